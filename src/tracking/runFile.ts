import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRef } from './types.js';

/** `<out>/mlflow-run.json`: which MLflow run this output directory logs to (no credentials). */
export const RUN_FILE = 'mlflow-run.json';

/** The run recorded in `outDir`, or null when there is none (or the file is unreadable). */
export function readRunFile(outDir: string): RunRef | null {
  try {
    const raw = JSON.parse(readFileSync(join(outDir, RUN_FILE), 'utf8')) as Partial<RunRef>;
    if (typeof raw.uri === 'string' && typeof raw.runId === 'string' && raw.runId && raw.experimentId !== undefined) {
      return { uri: raw.uri, experimentId: String(raw.experimentId), runId: raw.runId };
    }
  } catch {
    /* missing or damaged: a new run is created */
  }
  return null;
}

/** Write `mlflow-run.json` atomically. */
export function writeRunFile(outDir: string, ref: RunRef): void {
  const path = join(outDir, RUN_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, `${JSON.stringify({ uri: ref.uri, experimentId: ref.experimentId, runId: ref.runId }, null, 2)}\n`);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

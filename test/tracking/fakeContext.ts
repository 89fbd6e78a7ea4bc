/** A hand-built HookContext: a real RunRecorder, summary and resolved config, nothing of the trainer. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/load.js';
import type { RawConfig } from '../../src/config/schema.js';
import type { ClipDataset } from '../../src/data/types.js';
import type { HookContext } from '../../src/train/hooks.js';
import { RunRecorder } from '../../src/train/recorder.js';
import type { RunSummary } from '../../src/train/summary.js';
import { SampleWeightTable } from '../../src/train/weights.js';

export function tempDir(prefix = 'cbf-tracking-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function dataset(name: string, size: number): ClipDataset {
  return {
    name,
    size,
    imageShape: [4, 4, 3],
    classNames: ['a', 'b'],
    id: (i) => `${name}:${i}`,
    caption: (i) => `a photo of a ${i % 2 ? 'b' : 'a'}.`,
    label: (i) => i % 2,
    readImages: (indices, out) => {
      out.fill(0, 0, indices.length * 48);
    },
  };
}

export type FakeContext = HookContext & { recorder: RunRecorder; logs: string[] };

export function fakeContext(options: { outDir: string; config?: RawConfig; backend?: string; recorder?: RunRecorder }): FakeContext {
  const config = resolveConfig((options.config ?? {}) as RawConfig);
  const trainSet = dataset('synthetic', 8);
  const summary: RunSummary = {
    config,
    backend: options.backend ?? 'cpu',
    status: 'running',
    dataset: { name: trainSet.name, trainSize: 8, testSize: 4 },
    epochs: [],
    eval: { cleanAccuracy: null, attackSuccessRate: null },
    poison: null,
    filter: null,
    timings: { totalSeconds: 0, trainSeconds: 0, evalSeconds: 0, hookSeconds: 0 },
  };
  const logs: string[] = [];
  return {
    config,
    outDir: options.outDir,
    epoch: 0,
    totalEpochs: config.train.epochs,
    backend: options.backend ?? 'cpu',
    model: {
      embedDim: 4,
      embedImages: async () => new Float32Array(0),
      embedTexts: async () => new Float32Array(0),
    },
    trainSet,
    testSet: dataset('synthetic-test', 4),
    weights: new SampleWeightTable(8),
    recorder: options.recorder ?? new RunRecorder(),
    summary,
    poison: null,
    logs,
    log: (m: string) => {
      logs.push(m);
    },
    requestStop: () => {},
    requestRewind: () => {},
    rewinds: [],
  };
}

/** What the trainer does before onTrainEnd: write summary.json. */
export function writeSummary(ctx: HookContext, status: RunSummary['status']): void {
  writeFileSync(join(ctx.outDir, 'summary.json'), `${JSON.stringify({ ...ctx.summary, status }, null, 2)}\n`);
}

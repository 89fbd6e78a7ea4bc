import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { RunSummary } from '../train/summary.js';
import { UserError } from '../util/errors.js';

interface RoundLike {
  epoch: number;
  auroc: number | null;
  /** Absent in runs from before it was recorded. */
  probeAuroc?: number | null;
  /** An observation round (filter.observeEpochs); absent in runs from before they existed. */
  observeOnly?: boolean;
  poisonRecall: number | null;
  poisonsRemaining: number | null;
  cleanDropped: number | null;
  droppedTotal: number;
}

/** One line of a comparison: what a run was and what it reached. */
export interface RunComparison {
  readonly name: string;
  readonly dir: string;
  readonly data: string;
  readonly attack: string;
  readonly poisonRate: number | null;
  readonly poisonCount: number | null;
  readonly filter: string;
  readonly status: string;
  readonly epochs: number;
  readonly cleanAccuracy: number | null;
  readonly attackSuccessRate: number | null;
  /**
   * AUROC of the first round: the one that scores the whole training set
   * and makes most of the decisions (later rounds score only what is left,
   * so their AUROC measures the hard residue).
   */
  readonly decidingAuroc: number | null;
  /** The same round's trigger-probe ranking of every sample (null: no probe, no ground truth, or an older run). */
  readonly decidingProbeAuroc: number | null;
  readonly decidingEpoch: number | null;
  /** After the last round, or after the re-admission when there was one (what the run ended training on). */
  readonly poisonsRemaining: number | null;
  readonly poisonRecall: number | null;
  readonly cleanDropped: number | null;
  readonly seconds: number;
  /** Final accuracy per class (runs from before it was recorded: null). */
  readonly accuracyByClass: Record<string, number> | null;
}

export function readSummary(pathOrDir: string): RunSummary {
  const path = existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'summary.json') : pathOrDir;
  if (!existsSync(path)) throw new UserError(`no summary.json at ${path}`, 'SUMMARY_MISSING', 'pass run output directories (the --out of train runs) or summary.json files');
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as RunSummary;
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`, 'SUMMARY_INVALID');
  }
}

export function compareRun(summary: RunSummary, dir: string, name = basename(dir)): RunComparison {
  const filter = summary.filter as {
    detector?: string;
    mode?: string;
    probe?: unknown;
    rounds?: RoundLike[];
    readmission?: { poisonsRemaining: number | null; cleanDropped: number | null } | null;
  } | null;
  const rounds = filter?.rounds ?? [];
  const rewind = summary.rewinds?.[0];
  // observation rounds (filter.observeEpochs) drop nothing: the first round that drops decides
  const deciding = rounds.find((r) => !r.observeOnly) ?? null;
  const last = rounds[rounds.length - 1] ?? null;
  // What the run ended training on: after the re-admission when there was one.
  const readmission = filter?.readmission ?? null;
  const poisonsRemaining = readmission ? readmission.poisonsRemaining : (last?.poisonsRemaining ?? null);
  const poisonCount = summary.poison ? summary.poison.count : null;
  return {
    name,
    dir,
    data: summary.dataset.name,
    attack: summary.poison ? summary.poison.attack : 'none',
    poisonRate: summary.poison ? summary.poison.rate : null,
    poisonCount,
    filter: filter ? `${filter.detector}${filter.probe ? '+probe' : ''}${readmission ? '+readmit' : ''} (${filter.mode}${rewind !== undefined ? `, rewind@${rewind}` : ''})` : 'off',
    status: summary.status,
    epochs: summary.epochs.length,
    cleanAccuracy: summary.eval.cleanAccuracy,
    attackSuccessRate: summary.eval.attackSuccessRate,
    decidingAuroc: deciding?.auroc ?? null,
    decidingProbeAuroc: deciding?.probeAuroc ?? null,
    decidingEpoch: deciding?.epoch ?? null,
    poisonsRemaining,
    poisonRecall: readmission ? (poisonsRemaining !== null && poisonCount ? 1 - poisonsRemaining / poisonCount : null) : (last?.poisonRecall ?? null),
    cleanDropped: readmission ? readmission.cleanDropped : (last?.cleanDropped ?? null),
    seconds: summary.timings.totalSeconds,
    accuracyByClass: summary.eval.accuracyByClass ?? null,
  };
}

const num = (v: number | null, digits = 3) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(v < 0.01 ? 2 : 1)}%`);

const COLUMNS: [string, (r: RunComparison) => string][] = [
  ['run', (r) => r.name],
  ['attack', (r) => (r.attack === 'none' ? 'none' : r.poisonCount === 0 ? `none (${r.attack} ASR baseline)` : `${r.attack} ${pct(r.poisonRate)}`)],
  ['filter', (r) => r.filter],
  ['clean acc', (r) => num(r.cleanAccuracy)],
  ['ASR', (r) => num(r.attackSuccessRate)],
  ['AUROC round 1', (r) => (r.decidingAuroc === null ? '–' : `${num(r.decidingAuroc)} (ep ${r.decidingEpoch})`)],
  ['with probe', (r) => num(r.decidingProbeAuroc)],
  ['poisons left', (r) => (r.poisonsRemaining === null ? (r.poisonCount ? String(r.poisonCount) : '–') : `${r.poisonsRemaining}/${r.poisonCount}`)],
  ['clean dropped', (r) => (r.cleanDropped === null ? '–' : String(r.cleanDropped))],
  ['epochs', (r) => String(r.epochs)],
  ['time', (r) => `${r.seconds.toFixed(0)} s`],
];

/** A fixed-width table for the terminal. */
export function formatComparisonTable(rows: readonly RunComparison[]): string {
  const cells = [COLUMNS.map(([h]) => h), ...rows.map((r) => COLUMNS.map(([, f]) => f(r)))];
  const widths = COLUMNS.map((_, c) => Math.max(...cells.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** The same table in Markdown (for READMEs and reports). */
export function formatComparisonMarkdown(rows: readonly RunComparison[]): string {
  const head = `| ${COLUMNS.map(([h]) => h).join(' | ')} |`;
  const sep = `|${COLUMNS.map(() => '---').join('|')}|`;
  return [head, sep, ...rows.map((r) => `| ${COLUMNS.map(([, f]) => f(r)).join(' | ')} |`)].join('\n');
}

/**
 * Accuracy per class, one column per run; after the first run each cell also
 * shows its difference from the first in points — where a filter's dropped
 * data costs accuracy. Classes in first-seen order; runs without per-class
 * figures show "–".
 */
export function formatClassTable(rows: readonly RunComparison[], markdown = false): string {
  const classes = [...new Set(rows.flatMap((r) => Object.keys(r.accuracyByClass ?? {})))];
  if (!classes.length) return 'no run has per-class accuracy (summary.json → eval.accuracyByClass; runs trained before it was recorded do not have it)';
  const base = rows[0].accuracyByClass;
  const cell = (r: RunComparison, i: number, c: string) => {
    const v = r.accuracyByClass?.[c];
    if (v === undefined) return '–';
    const ref = base?.[c];
    if (i === 0 || ref === undefined) return v.toFixed(3);
    const diff = (v - ref) * 100;
    return `${v.toFixed(3)} (${diff >= 0 ? '+' : '−'}${Math.abs(diff).toFixed(1)})`;
  };
  const head = ['class', ...rows.map((r) => r.name)];
  const body = classes.map((c) => [c, ...rows.map((r, i) => cell(r, i, c))]);
  if (markdown) return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((b) => `| ${b.join(' | ')} |`)].join('\n');
  const widths = head.map((_, c) => Math.max(...[head, ...body].map((row) => row[c].length)));
  const line = (row: string[]) => row.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

import { describe, expect, it } from 'vitest';
import { compareRun, formatClassTable } from '../../src/eval/compare.js';
import type { RunSummary } from '../../src/train/summary.js';

function summary(filter: unknown): RunSummary {
  return {
    status: 'finished',
    dataset: { name: 'fashion-mnist', trainSize: 1000, testSize: 100 },
    epochs: [],
    eval: { cleanAccuracy: 0.9, attackSuccessRate: 0.01 },
    poison: { attack: 'blended', target: 'ankle boot', rate: 0.01, count: 10 },
    filter,
    rewinds: [4],
    timings: { totalSeconds: 12, trainSeconds: 10, evalSeconds: 1, hookSeconds: 1 },
  } as unknown as RunSummary;
}

const rounds = [
  { epoch: 2, auroc: 0.97, probeAuroc: 0.995, poisonRecall: 0.6, poisonsRemaining: 4, cleanDropped: 50, droppedTotal: 56 },
  { epoch: 3, auroc: 0.8, poisonRecall: 0.9, poisonsRemaining: 1, cleanDropped: 80, droppedTotal: 89 },
];

describe('compareRun', () => {
  it('reports the first round as deciding and the last round as the final state', () => {
    const r = compareRun(summary({ detector: 'slof', mode: 'during', probe: {}, rounds, readmission: null }), 'runs/x');
    expect(r).toMatchObject({ filter: 'slof+probe (during, rewind@4)', decidingAuroc: 0.97, decidingProbeAuroc: 0.995, decidingEpoch: 2, poisonsRemaining: 1, poisonRecall: 0.9, cleanDropped: 80 });
  });

  it('reads runs recorded before the probe AUROC existed', () => {
    const older = rounds.map(({ probeAuroc: _, ...r }) => r);
    expect(compareRun(summary({ detector: 'slof', mode: 'during', probe: {}, rounds: older, readmission: null }), 'runs/x').decidingProbeAuroc).toBeNull();
  });

  it('after a re-admission, reports what the run ended training on', () => {
    const readmission = { epoch: 6, seconds: 1, candidates: 89, readmitted: 62, readmittedPoisons: 2, threshold: 0.7, poisonsRemaining: 3, cleanDropped: 20 };
    const r = compareRun(summary({ detector: 'slof', mode: 'during', probe: null, rounds, readmission }), 'runs/x');
    expect(r).toMatchObject({ filter: 'slof+readmit (during, rewind@4)', decidingAuroc: 0.97, poisonsRemaining: 3, cleanDropped: 20 });
    expect(r.poisonRecall).toBeCloseTo(0.7, 12);
  });
});

describe('formatClassTable', () => {
  const withClasses = (accuracyByClass: Record<string, number> | undefined) => {
    const s = summary(null);
    return { ...s, eval: { ...s.eval, ...(accuracyByClass ? { accuracyByClass } : {}) } } as RunSummary;
  };

  it('lists every class, each run after the first with its difference from the first in points', () => {
    const rows = [
      compareRun(withClasses({ sandal: 0.95, 'ankle boot': 0.9 }), 'runs/clean'),
      compareRun(withClasses({ sandal: 0.912, 'ankle boot': 0.9 }), 'runs/filtered'),
      compareRun(withClasses(undefined), 'runs/old'),
    ];
    expect(rows[2].accuracyByClass).toBeNull();
    const lines = formatClassTable(rows).split('\n');
    expect(lines[0].split(/\s+/)).toEqual(['class', 'clean', 'filtered', 'old']);
    expect(lines[2].replace(/\s+/g, ' ')).toBe('sandal 0.950 0.912 (−3.8) –');
    expect(lines[3].replace(/\s+/g, ' ')).toBe('ankle boot 0.900 0.900 (+0.0) –');
    expect(formatClassTable(rows, true).split('\n')[2]).toBe('| sandal | 0.950 | 0.912 (−3.8) | – |');
  });

  it('says so when no run has per-class figures', () => {
    expect(formatClassTable([compareRun(withClasses(undefined), 'runs/old')])).toMatch(/no run has per-class accuracy/);
  });
});

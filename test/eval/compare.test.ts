import { describe, expect, it } from 'vitest';
import { compareRun } from '../../src/eval/compare.js';
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
  { epoch: 2, auroc: 0.97, poisonRecall: 0.6, poisonsRemaining: 4, cleanDropped: 50, droppedTotal: 56 },
  { epoch: 3, auroc: 0.8, poisonRecall: 0.9, poisonsRemaining: 1, cleanDropped: 80, droppedTotal: 89 },
];

describe('compareRun', () => {
  it('reports the first round as deciding and the last round as the final state', () => {
    const r = compareRun(summary({ detector: 'slof', mode: 'during', probe: {}, rounds, readmission: null }), 'runs/x');
    expect(r).toMatchObject({ filter: 'slof+probe (during, rewind@4)', decidingAuroc: 0.97, decidingEpoch: 2, poisonsRemaining: 1, poisonRecall: 0.9, cleanDropped: 80 });
  });

  it('after a re-admission, reports what the run ended training on', () => {
    const readmission = { epoch: 6, seconds: 1, candidates: 89, readmitted: 62, readmittedPoisons: 2, threshold: 0.7, poisonsRemaining: 3, cleanDropped: 20 };
    const r = compareRun(summary({ detector: 'slof', mode: 'during', probe: null, rounds, readmission }), 'runs/x');
    expect(r).toMatchObject({ filter: 'slof+readmit (during, rewind@4)', decidingAuroc: 0.97, poisonsRemaining: 3, cleanDropped: 20 });
    expect(r.poisonRecall).toBeCloseTo(0.7, 12);
  });
});

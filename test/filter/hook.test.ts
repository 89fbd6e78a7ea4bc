import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backdoorFilter, type FilterSummary } from '../../src/filter/hook.js';
import { displacementRows, largerRobustZ } from '../../src/filter/views.js';
import { runPipeline } from '../../src/pipeline.js';
import { compareRun } from '../../src/eval/compare.js';
import { quantile } from '../../src/filter/readmit.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { readNpyMatrix, writeNpy } from '../../src/util/npy.js';
import { tempDir, tinyConfig } from '../helpers/tiny.js';

function readCsv(path: string): Record<string, string>[] {
  const [head, ...rows] = readFileSync(path, 'utf8').trim().split('\n');
  const keys = head.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [keys[i], v])));
}

/** Median of the values (mean of the middle two for an even count). */
function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = (sorted.length - 1) / 2;
  return (sorted[Math.floor(mid)] + sorted[Math.ceil(mid)]) / 2;
}

/** Robust z-scores by hand: (v - median) / (1.4826 MAD). */
function robustZByHand(values: number[]): number[] {
  const m = median(values);
  const scale = 1.4826 * median(values.map((v) => Math.abs(v - m)));
  return values.map((v) => (v - m) / scale);
}

/** AUROC of a scores-file column against its `poisoned` column, pair by pair (ties count 1/2). */
function pairAuroc(rows: Record<string, string>[], key: string): number {
  const poisoned = rows.filter((x) => x.poisoned === '1').map((x) => Number(x[key]));
  const clean = rows.filter((x) => x.poisoned === '0').map((x) => Number(x[key]));
  let wins = 0;
  for (const p of poisoned) for (const c of clean) wins += p > c ? 1 : p === c ? 0.5 : 0;
  return wins / (poisoned.length * clean.length);
}

/** Cosine of row i of x and row j of y (row-major, d columns). */
function rowCosine(x: ArrayLike<number>, i: number, y: ArrayLike<number>, j: number, d: number): number {
  let ab = 0, aa = 0, bb = 0;
  for (let f = 0; f < d; f++) {
    const a = x[i * d + f], b = y[j * d + f];
    ab += a * b;
    aa += a * a;
    bb += b * b;
  }
  return ab / Math.sqrt(aa * bb);
}

/**
 * An observation round after epoch 1, a dropping round after epoch 2, the rewind after it and the re-admission
 * one epoch later, caption groups at cosine 0.9, every embedding saved: for the caption-concept tests.
 */
function observedConceptConfig(out: string, conceptDominance: number) {
  return tinyConfig({
    out,
    data: { size: 320 },
    train: { epochs: 3 },
    poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
    filter: {
      enabled: true,
      warmupEpochs: 2,
      observeEpochs: 1,
      rewindAfter: 2,
      referenceSize: 128,
      referenceRepeats: 1,
      k: 8,
      probe: { seedZ: 4, minSeeds: 2 },
      readmit: { after: 1, conceptSimilarity: 0.9, conceptDominance },
      displacement: { enabled: false },
      saveEmbeddings: true,
    },
  });
}

describe('backdoor filter hook', () => {
  it('scores during the probe epochs, drops, rewinds, and reports consistent figures', async () => {
    const out = tempDir();
    const config = tinyConfig({
      out,
      data: { size: 512 },
      train: { epochs: 3 },
      poison: { attack: 'badnets', position: 'fixed', count: 12, target: 'red circle' },
      filter: { enabled: true, warmupEpochs: 1, rewindAfter: 2, referenceSize: 128, referenceRepeats: 2, k: 8, probe: { seedZ: 4, minSeeds: 2 }, saveEmbeddings: true, readmit: { enabled: false } },
    });
    const result = await runPipeline(config);
    const s = result.summary;
    const filter = s.filter as FilterSummary;
    expect(filter.detector).toBe('slof');
    expect(filter.rounds.map((r) => r.epoch)).toEqual([1, 2]);
    expect(s.rewinds).toEqual([2]);
    expect(s.epochs).toHaveLength(5);
    const ckpt = await loadCheckpoint(out);
    ckpt.model.dispose();
    const last = filter.rounds[1];
    const csv = readCsv(join(out, 'scores-epoch2.csv'));
    expect(csv).toHaveLength(512);
    // round 2 follows the displacement view's anchor (epoch 1): each view's own score beside the round's
    expect(Object.keys(csv[0])).toEqual(['index', 'id', 'score', 'weight', 'poisoned', 'probe', 'position', 'displacement']);
    const zero = csv.filter((r) => Number(r.weight) === 0);
    expect(zero.length).toBe(last.droppedTotal);
    // The trigger probe (on by default) drops samples this round scored below its cut, within its budget, only with a positive decision value.
    const probed = csv.filter((r) => Number(r.weight) === 0 && r.score !== '' && Number(r.score) < last.cut!);
    expect(probed.length).toBe(last.probeDropped);
    expect(last.probeDropped).toBeLessThanOrEqual(Math.round(config.filter.probe.budget * last.probeSeeds));
    for (const r of probed) expect(Number(r.probe)).toBeGreaterThan(0);
    expect(filter.probe).toEqual(config.filter.probe);
    expect(last.probeSeeds).toBeGreaterThanOrEqual(2);
    // saveEmbeddings: every sample's embedding of each round, row = sample index
    const saved = readNpyMatrix(join(out, 'embeddings-epoch2.npy'));
    expect([saved.rows, saved.cols]).toEqual([512, config.model.embedDim]);
    expect(Array.from(saved.data).every(Number.isFinite)).toBe(true);
    // and every caption's, under the same model: equal captions, equal rows
    const savedCaptions = readNpyMatrix(join(out, 'caption-embeddings-epoch2.npy'));
    expect([savedCaptions.rows, savedCaptions.cols]).toEqual([512, config.model.embedDim]);
    expect(Array.from(savedCaptions.data).every(Number.isFinite)).toBe(true);
    expect(new Set(Array.from({ length: 512 }, (_, i) => savedCaptions.data.slice(i * saved.cols, (i + 1) * saved.cols).join(','))).size).toBeLessThan(512);
    expect(filter.rounds.some((r) => r.probeDropped > 0)).toBe(true);
    for (const r of csv) expect(Number(r.weight)).toBe(ckpt.sampleWeights[Number(r.index)]);
    const poisonsDropped = zero.filter((r) => r.poisoned === '1').length;
    expect(last.poisonRecall).toBeCloseTo(poisonsDropped / 12, 10);
    expect(last.poisonsRemaining).toBe(12 - poisonsDropped);
    expect(last.cleanDropped).toBe(zero.length - poisonsDropped);
    // Samples dropped in round 1 are not scored again (no reconsider): their round-2 score is empty.
    const firstDropped = readCsv(join(out, 'scores-epoch1.csv')).filter((r) => Number(r.weight) === 0).map((r) => r.index);
    for (const i of firstDropped) expect(csv[Number(i)].score).toBe('');
    // probeAuroc: the probe's decision value of every sample against the ground truth, pair by pair (ties count 1/2)
    for (const r of filter.rounds) {
      const rows = readCsv(join(out, `scores-epoch${r.epoch}.csv`));
      if (rows[0].probe === '') {
        expect(r.probeAuroc).toBeNull();
        continue;
      }
      expect(r.probeAuroc).toBeCloseTo(pairAuroc(rows, 'probe'), 12);
    }
    expect(filter.rounds.some((r) => r.probeAuroc !== null)).toBe(true);
    // The displacement view: the anchor is the encoder after epoch 1, the same one round 1 embedded with; round 1
    // (at the anchor) scores the embeddings alone, round 2 takes each sample's larger robust z of the two views.
    expect(filter.displacement).toEqual({ enabled: true, anchorEpoch: 1 });
    expect(Array.from(readNpyMatrix(join(out, 'anchor-embeddings-epoch1.npy')).data)).toEqual(Array.from(readNpyMatrix(join(out, 'embeddings-epoch1.npy')).data));
    expect(filter.rounds[0].viewAuroc).toBeNull();
    expect(Object.keys(readCsv(join(out, 'scores-epoch1.csv'))[0])).not.toContain('displacement');
    const scoredRows = csv.filter((r) => r.score !== '');
    const zPosition = robustZByHand(scoredRows.map((r) => Number(r.position)));
    const zDisplacement = robustZByHand(scoredRows.map((r) => Number(r.displacement)));
    scoredRows.forEach((r, i) => expect(Number(r.score)).toBeCloseTo(Math.max(zPosition[i], zDisplacement[i]), 9));
    expect(scoredRows.some((r, i) => zDisplacement[i] > zPosition[i]) && scoredRows.some((r, i) => zPosition[i] > zDisplacement[i])).toBe(true);
    expect(last.viewAuroc!.position).toBeCloseTo(pairAuroc(scoredRows, 'position'), 12);
    expect(last.viewAuroc!.displacement).toBeCloseTo(pairAuroc(scoredRows, 'displacement'), 12);
    for (const r of filter.rounds) {
      expect(r.auroc).not.toBeNaN();
      expect(r.auroc).toBeGreaterThanOrEqual(0);
      expect(r.scored).toBeGreaterThan(0);
    }
    // the rewound model trained 3 epochs on the kept samples only (a trailing batch of one is skipped: no negatives;
    // the re-admission, tested below, is off here)
    const kept = 512 - last.droppedTotal;
    const trained = kept % config.train.batchSize === 1 ? kept - 1 : kept;
    expect(s.epochs.slice(2).map((e) => e.activeSamples)).toEqual([trained, trained, trained]);
  });

  it.each([
    ['everything the probe holds', -1, 0, undefined, undefined, -1],
    ['what the probe holds captioned like the seeds\' largest caption group', 0.9, 0, undefined, undefined, -1],
    ['nothing, the seeds\' largest caption group not dominating,', 0.9, 1000, undefined, undefined, -1],
    ['nothing, the group not dominating, and never what the probe ranks most like its seeds,', 0.9, 1000, undefined, 0.25, 0.5],
    ['what the probe holds that the rounds\' models believed more than the judge', -1, 0, 0.5, undefined, -1],
    ['everything the probe holds, never what it ranks like its seeds,', -1, 0, undefined, 0.5, -1],
    ['what the probe holds captioned like the group it fitted on, never what it ranks like that group,', 0.9, 0, undefined, 0.25, -1],
  ])('re-admits, after the rewind, the dropped samples whose captions the rewound model agrees with; %s at a higher bar', async (_what, conceptSimilarity, conceptDominance, beliefQuantile, probeVetoQuantile, undominatedVetoQuantile) => {
    const out = tempDir();
    const config = tinyConfig({
      out,
      data: { size: 384 },
      train: { epochs: 3 },
      poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
      filter: {
        enabled: true,
        warmupEpochs: 1,
        rewindAfter: 2,
        referenceSize: 128,
        referenceRepeats: 2,
        k: 8,
        probe: { seedZ: 4, minSeeds: 2 },
        readmit: {
          enabled: true,
          after: 1,
          quantile: 0.05,
          heldQuantile: 0.5,
          conceptSimilarity,
          conceptDominance,
          ...(beliefQuantile !== undefined ? { beliefQuantile } : {}),
          probeVetoQuantile: probeVetoQuantile ?? -1,
          undominatedVetoQuantile,
        },
        saveEmbeddings: true,
      },
    });
    const result = await runPipeline(config);
    const filter = result.summary.filter as FilterSummary;
    const readmission = filter.readmission!;
    // judged once, one epoch into the rewound training (epoch 3 of 2 + 3)
    expect(readmission.epoch).toBe(3);
    const rounds = filter.rounds.map((r) => ({ r, csv: readCsv(join(out, `scores-epoch${r.epoch}.csv`)) }));
    // held: dropped after a round whose probe fit ranked it like its seeds (this includes the probe's own drops)
    const probeHeld = new Set(rounds.flatMap(({ csv }) => csv.filter((x) => Number(x.weight) === 0 && x.probe !== '' && Number(x.probe) > 0).map((x) => Number(x.index))));
    const byProbe = rounds.flatMap(({ r, csv }) => csv.filter((x) => Number(x.weight) === 0 && x.score !== '' && Number(x.score) < r.cut!).map((x) => Number(x.index)));
    expect(byProbe.length).toBeGreaterThan(0);
    for (const i of byProbe) expect(probeHeld.has(i)).toBe(true);
    const last = rounds[rounds.length - 1].csv;
    const dropped = last.filter((x) => Number(x.weight) === 0).map((x) => Number(x.index));
    expect(readmission.candidates).toBe(dropped.length);
    expect(readmission.heldByProbe).toBe(probeHeld.size);
    expect(probeHeld.size).toBeGreaterThan(0);
    expect(probeHeld.size).toBeLessThan(dropped.length);
    const ckpt = await loadCheckpoint(out);
    ckpt.model.dispose();
    const images = readNpyMatrix(join(out, 'readmit-epoch3-images.npy'));
    const captions = readNpyMatrix(join(out, 'readmit-epoch3-captions.npy'));
    const d = images.cols;
    const unitDot = (x: Float32Array | Float64Array, i: number, y: Float32Array | Float64Array, j: number) => rowCosine(x, i, y, j, d);
    // what stays held: with the concept rule, the holds whose caption is within the similarity of a caption of
    // the seeds' largest caption group (recomputed from the saved seeds and caption embeddings)
    let held = probeHeld;
    let undominated = false;
    if (conceptSimilarity > -1) {
      const seeds = ((ckpt.state.hooks as Record<string, { seeds: number[] }>)['backdoor-filter'].seeds ?? []).slice().sort((a, b) => a - b);
      expect(seeds.length).toBeGreaterThan(1);
      const near = (i: number, j: number) => unitDot(captions.data, i, captions.data, j) >= conceptSimilarity;
      const counts = seeds.map((a) => seeds.filter((b) => near(a, b)).length);
      const anchor = seeds[counts.indexOf(Math.max(...counts))];
      const group = seeds.filter((b) => near(anchor, b));
      const rest = seeds.filter((b) => !group.some((g) => near(g, b))); // outside the concept
      const runnerUp = Math.max(0, ...rest.map((a) => rest.filter((b) => near(a, b)).length));
      const dominant = group.length >= conceptDominance * runnerUp;
      undominated = !dominant;
      expect(readmission.concept).toMatchObject({ anchor, seeds: group.length, runnerUp, dominant });
      expect(runnerUp).toBeGreaterThan(0); // so that a dominance of 1000 below is a real test
      held = dominant ? new Set([...probeHeld].filter((i) => group.some((g) => near(i, g)))) : new Set();
      expect(readmission.concept!.caption).toMatch(/^a .+/);
      expect(held.size).toBeLessThan(probeHeld.size); // on this run the rule narrows the holds, so the decision below tests it
      if (dominant) expect(held.size).toBeGreaterThan(0);
      expect(readmission.heldInConcept).toBe(held.size);
    } else {
      expect(readmission.concept).toBeNull();
      expect(readmission.heldInConcept).toBeNull();
    }
    if (beliefQuantile !== undefined) {
      // belief: the highest cos(image, caption) under the rounds' models (their saved embeddings); the gap to the
      // judge's agreement must exceed the kept samples' quantile of the same gap
      const roundPairs = filter.rounds.map((r) => [readNpyMatrix(join(out, `embeddings-epoch${r.epoch}.npy`)), readNpyMatrix(join(out, `caption-embeddings-epoch${r.epoch}.npy`))]);
      const belief = (i: number) => Math.fround(Math.max(...roundPairs.map(([img, cap]) => unitDot(img.data, i, cap.data, i)))); // stored as float32
      const gap = (i: number) => belief(i) - unitDot(images.data, i, captions.data, i);
      const keptGaps = Float64Array.from(last.filter((x) => Number(x.weight) > 0).map((x) => gap(Number(x.index))));
      const threshold = quantile(keptGaps, beliefQuantile);
      expect(readmission.beliefThreshold).toBeCloseTo(threshold, 5);
      held = new Set([...held].filter((i) => gap(i) > threshold));
      expect(readmission.heldBelieved).toBe(held.size);
      expect(held.size).toBeLessThan(probeHeld.size);
      expect(held.size).toBeGreaterThan(0);
    } else expect(readmission.heldBelieved).toBeNull();
    // veto: the holds whose highest probe decision value over the rounds (the scores files) reaches the quantile of it
    // over what the probes fitted on (the seeds, or their dominant caption group: probe.concept); without a dominant
    // group, every probe hold at the undominated quantile (and the held bar applies to none)
    let vetoed = new Set<number>();
    const vetoQuantile = undominated ? undominatedVetoQuantile : (probeVetoQuantile ?? -1);
    const vetoable = undominated ? probeHeld : held;
    if (vetoQuantile >= 0) {
      const probeMax = (i: number) => Math.fround(Math.max(...rounds.map(({ csv }) => (csv[i].probe === '' ? -Infinity : Number(csv[i].probe))))); // stored as float32
      const { seeds, probeFitted } = (ckpt.state.hooks as Record<string, { seeds: number[]; probeFitted: number[] }>)['backdoor-filter'];
      // with a dominant group the probes fitted on it, not on every seed
      if (!undominated && conceptSimilarity > -1) expect(probeFitted.length).toBeLessThan(seeds.length);
      const threshold = quantile(Float64Array.from(probeFitted, probeMax), vetoQuantile);
      expect(readmission.vetoThreshold).toBeCloseTo(threshold, 5);
      vetoed = new Set([...vetoable].filter((i) => probeMax(i) >= threshold));
      expect(readmission.heldVetoed).toBe(vetoed.size);
      expect(vetoed.size).toBeGreaterThan(0);
      expect(vetoed.size).toBeLessThan(vetoable.size);
    } else expect(readmission.heldVetoed).toBeNull();
    const back = new Set(dropped.filter((i) => ckpt.sampleWeights[i] === 1));
    for (const i of vetoed) expect(back.has(i)).toBe(false);
    expect(back.size).toBe(readmission.readmitted);
    expect(readmission.readmittedHeld).toBe([...back].filter((i) => held.has(i)).length);
    expect(readmission.readmittedPoisons).toBe([...back].filter((i) => last[i].poisoned === '1').length);
    // The decision, recomputed from the judge's saved embeddings: the bars are the kept samples' 5% quantile and median of cos(image, caption).
    const cos = (i: number) => unitDot(images.data, i, captions.data, i);
    const keptCos = last.filter((x) => Number(x.weight) > 0).map((x) => cos(Number(x.index))).sort((a, b) => a - b);
    const at = (q: number) => {
      const pos = q * (keptCos.length - 1);
      const lo = Math.floor(pos);
      return keptCos[lo] + (pos - lo) * (keptCos[Math.min(lo + 1, keptCos.length - 1)] - keptCos[lo]);
    };
    expect(readmission.threshold).toBeCloseTo(at(0.05), 5);
    expect(readmission.heldThreshold).toBeCloseTo(at(0.5), 5);
    expect(readmission.heldThreshold!).toBeGreaterThan(readmission.threshold!);
    for (const i of dropped) {
      if (vetoed.has(i)) continue;
      const bar = held.has(i) ? readmission.heldThreshold! : readmission.threshold!;
      if (Math.abs(cos(i) - bar) < 1e-5) continue;
      expect(back.has(i)).toBe(cos(i) > bar);
    }
    const active = ckpt.sampleWeights.filter((w) => w > 0).length;
    expect(active).toBe(384 - dropped.length + readmission.readmitted);
    expect(readmission.cleanDropped! + (8 - readmission.poisonsRemaining!)).toBe(384 - active);
    const trained = (n: number) => (n % config.train.batchSize === 1 ? n - 1 : n);
    expect(result.summary.epochs.map((e) => e.activeSamples)).toEqual([384, trained(384 - filter.rounds[0].droppedTotal), trained(384 - dropped.length), trained(active), trained(active)]);
  });

  it('carries its rounds and the trigger probe\'s seeds through a checkpoint (resume)', () => {
    const filter = backdoorFilter();
    const readmission = { epoch: 6, seconds: 1, candidates: 10, heldByProbe: 2, readmitted: 4, readmittedHeld: 1, readmittedPoisons: 0, threshold: 0.5, heldThreshold: 0.8, poisonsRemaining: 0, cleanDropped: 6 };
    filter.restoreState({ rounds: [], seeds: [5, 1, 9], probeHeld: [7, 3], probeFitted: [1, 12], readmission });
    expect(filter.saveState()).toEqual({ rounds: [], seeds: [5, 1, 9], probeHeld: [7, 3], probeFitted: [1, 12], readmission });
    // before probe.concept, the probes fitted on their seeds: what the veto compares with
    filter.restoreState({ rounds: [], seeds: [5, 1, 9], probeHeld: [7, 3], readmission });
    expect(filter.saveState()).toEqual({ rounds: [], seeds: [5, 1, 9], probeHeld: [7, 3], probeFitted: [5, 1, 9], readmission });
    // the rounds' beliefs (readmit.beliefQuantile), float32 per sample, -2 for none yet: base64 like the probe's maxima;
    // a checkpoint from before that wrote JSON numbers, and restores to the same state
    const beliefFloat32 = Buffer.from(Float32Array.from([0.5, -2, 0.25]).buffer).toString('base64');
    filter.restoreState({ rounds: [], seeds: [], probeHeld: [], readmission: null, beliefFloat32 });
    expect(filter.saveState()).toEqual({ rounds: [], seeds: [], probeHeld: [], readmission: null, beliefFloat32 });
    filter.restoreState({ rounds: [], seeds: [], probeHeld: [], readmission: null, belief: [0.5, -2, 0.25] });
    expect(filter.saveState()).toEqual({ rounds: [], seeds: [], probeHeld: [], readmission: null, beliefFloat32 });
    // the probe's highest decision value per sample (readmit.probeVetoQuantile): float32 bytes in base64, -Infinity for never scored
    const probeMaxFloat32 = Buffer.from(Float32Array.from([1.5, -Infinity, -0.25]).buffer).toString('base64');
    filter.restoreState({ rounds: [], seeds: [], probeHeld: [], readmission: null, probeMaxFloat32 });
    expect(filter.saveState()).toEqual({ rounds: [], seeds: [], probeHeld: [], readmission: null, probeMaxFloat32 });
    // a checkpoint written before the probe and the re-admission existed has neither
    filter.restoreState({ rounds: [] });
    expect(filter.saveState()).toEqual({ rounds: [], seeds: [], probeHeld: [], readmission: null });
  });

  it.each([true, false])('re-admits by default only with the trigger probe, whose holds it needs (probe on: %s)', async (probe) => {
    const config = tinyConfig({
      out: tempDir(),
      data: { size: 256 },
      train: { epochs: 3 },
      poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
      filter: { enabled: true, warmupEpochs: 1, rewindAfter: 2, referenceSize: 128, referenceRepeats: 1, k: 8, probe: { enabled: probe, seedZ: 4, minSeeds: 2 }, readmit: { after: 1 } },
    });
    const filter = (await runPipeline(config)).summary.filter as FilterSummary;
    if (probe) expect(filter.readmission?.epoch).toBe(3);
    else expect(filter.readmission).toBeNull();
  });

  it('re-admits nothing when no round ran the trigger probe (fewer seeds than probe.minSeeds)', async () => {
    const config = tinyConfig({
      out: tempDir(),
      data: { size: 256 },
      train: { epochs: 3 },
      poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
      filter: { enabled: true, warmupEpochs: 1, rewindAfter: 2, referenceSize: 128, referenceRepeats: 1, k: 8, probe: { seedZ: 4, minSeeds: 1000 }, readmit: { after: 1 } },
    });
    const summary = (await runPipeline(config)).summary;
    const filter = summary.filter as FilterSummary;
    const readmission = filter.readmission!;
    expect(filter.rounds.every((r) => r.probeDropped === 0)).toBe(true);
    expect(readmission.epoch).toBe(3);
    expect(readmission.skipped).toMatch(/^the trigger probe never ran \(\d+ seeds, fewer than probe.minSeeds 1000\)$/);
    expect(readmission.candidates).toBe(filter.rounds[filter.rounds.length - 1].droppedTotal);
    expect(readmission.candidates).toBeGreaterThan(0);
    expect(readmission.readmitted).toBe(0);
    // the epochs after the judgement train on what the rounds kept, no more
    const kept = 256 - readmission.candidates;
    expect(summary.epochs.slice(3).map((e) => e.activeSamples)).toEqual(summary.epochs.slice(3).map(() => kept));
    expect(summary.epochs.length).toBeGreaterThan(3);
  });

  it('keeps the displacement view\'s anchor through a resume: a run stopped after the anchor scores like one that was not', async () => {
    const config = (out: string) =>
      tinyConfig({
        out,
        data: { size: 320 },
        train: { epochs: 4 },
        poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
        filter: { enabled: true, warmupEpochs: 2, rewindAfter: 0, referenceSize: 128, referenceRepeats: 1, k: 8, probe: { seedZ: 4, minSeeds: 2 }, displacement: { anchorEpoch: 1 } },
      });
    const straight = tempDir();
    await runPipeline(config(straight));
    const stopped = tempDir();
    const abort = new AbortController();
    const stopAfterEpoch2 = { name: 'stop-after-epoch-2', onEpochEnd: (ctx: { epoch: number }) => void (ctx.epoch === 2 && abort.abort()) };
    const first = await runPipeline(config(stopped), { hooks: [stopAfterEpoch2], signal: abort.signal });
    expect(first.summary.status).not.toBe('finished');
    const state = (await loadCheckpoint(stopped)).state;
    expect(state.epoch).toBe(2);
    expect((state.hooks as Record<string, { anchor?: unknown }>)['backdoor-filter'].anchor).toEqual({ epoch: 1, file: 'anchor-embeddings-epoch1.npy' });
    // an anchor file that is not this run's is refused by name, with the fix
    const broken = tempDir();
    cpSync(stopped, broken, { recursive: true });
    writeNpy(join(broken, 'anchor-embeddings-epoch1.npy'), new Float32Array(6), [3, 2]);
    await expect(runPipeline(config(broken), { resume: true })).rejects.toThrow(/anchor-embeddings-epoch1\.npy holds 3 x 2 embeddings, but this run has 320 samples/);
    const resumed = await runPipeline(config(stopped), { resume: true });
    expect(resumed.summary.status).toBe('finished');
    // round 3 reads the anchor back from its file and scores both views as the uninterrupted run did
    const header = readFileSync(join(stopped, 'scores-epoch3.csv'), 'utf8').split('\n')[0];
    expect(header).toContain('displacement');
    expect(readFileSync(join(stopped, 'scores-epoch3.csv'), 'utf8')).toBe(readFileSync(join(straight, 'scores-epoch3.csv'), 'utf8'));
  });

  it('observation rounds (filter.observeEpochs) record confident detections for the concept and drop nothing; the first dropping round decides', async () => {
    const out = tempDir();
    const config = tinyConfig({
      out,
      data: { size: 320 },
      train: { epochs: 4 },
      poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
      filter: { enabled: true, warmupEpochs: 2, observeEpochs: 1, rewindAfter: 0, referenceSize: 128, referenceRepeats: 1, k: 8, probe: { seedZ: 4, minSeeds: 2 }, displacement: { enabled: false } },
    });
    const result = await runPipeline(config);
    const filter = result.summary.filter as FilterSummary;
    expect(filter.rounds.map((r) => [r.epoch, r.observeOnly])).toEqual([[1, true], [2, false], [3, false]]);
    const [observed, first] = filter.rounds;
    expect([observed.dropped, observed.probeDropped, observed.droppedTotal]).toEqual([0, 0, 0]);
    expect(result.summary.epochs[1].activeSamples).toBe(320);
    const csv = readCsv(join(out, 'scores-epoch1.csv'));
    expect(csv.every((r) => Number(r.weight) === 1)).toBe(true);
    // its confident detections: robust z >= seedZ over its scores (median/MAD), kept apart from the probe's seeds
    const z = robustZByHand(csv.map((r) => Number(r.score)));
    const seeds = csv.filter((_, t) => z[t] >= 4).map((r) => Number(r.index));
    expect(seeds.length).toBeGreaterThan(0);
    expect(observed.probeSeeds).toBe(seeds.length);
    const saved = (await loadCheckpoint(out)).state.hooks as Record<string, { seeds: number[]; observedSeeds: number[] }>;
    expect(saved['backdoor-filter'].observedSeeds.slice().sort((a, b) => a - b)).toEqual(seeds);
    // the probe's seeds are the dropping rounds' own: its budget (2 x seeds) bounds what it drops in round 2
    expect(filter.rounds[2].probeSeeds).toBe(saved['backdoor-filter'].seeds.length);
    expect(first.probeDropped).toBeLessThanOrEqual(2 * first.probeSeeds);
    expect(first.droppedTotal).toBeGreaterThan(0);
    const row = compareRun(result.summary, out);
    expect([row.decidingEpoch, row.decidingAuroc]).toEqual([2, first.auroc]);
  });

  it('the re-admission\'s concept reads the observation rounds\' confident detections with the probe\'s seeds', async () => {
    const out = tempDir();
    const config = observedConceptConfig(out, 0);
    const filter = (await runPipeline(config)).summary.filter as FilterSummary;
    const concept = filter.readmission!.concept!;
    const state = (await loadCheckpoint(out)).state.hooks as Record<string, { seeds: number[]; observedSeeds: number[] }>;
    const { seeds, observedSeeds } = state['backdoor-filter'];
    expect(observedSeeds.some((i) => !seeds.includes(i))).toBe(true); // so that reading them changes the concept's input
    // the concept's seeds: the dropped ones among both sets (recomputed from the judge's saved caption embeddings)
    const weights = readCsv(join(out, 'scores-epoch2.csv'));
    const candidates = [...new Set([...seeds, ...observedSeeds])].filter((i) => Number(weights[i].weight) === 0);
    const captions = readNpyMatrix(join(out, `readmit-epoch${filter.readmission!.epoch}-captions.npy`));
    const d = captions.cols;
    const cos = (i: number, j: number) => rowCosine(captions.data, i, captions.data, j, d);
    const group = candidates.filter((j) => cos(concept.anchor, j) >= 0.9);
    expect(candidates.some((i) => !seeds.includes(i))).toBe(true);
    expect(candidates).toContain(concept.anchor);
    expect(concept.seeds).toBe(group.length);
    expect(Math.max(...candidates.map((a) => candidates.filter((b) => cos(a, b) >= 0.9).length))).toBe(group.length);
  });

  it.each([
    ['dominates', 0],
    ['does not dominate', 1e9],
  ])('the trigger probe fits on the caption group of the seeds and observations when it %s (probe.concept)', async (_, conceptDominance) => {
    const out = tempDir();
    const config = observedConceptConfig(out, conceptDominance);
    const filter = (await runPipeline(config)).summary.filter as FilterSummary;
    const round = filter.rounds.find((r) => !r.observeOnly)!;
    const state = (await loadCheckpoint(out)).state.hooks as Record<string, { seeds: number[]; observedSeeds: number[]; probeFitted: number[] }>;
    const { seeds, observedSeeds, probeFitted } = state['backdoor-filter'];
    // the group by hand, from the round's caption embeddings: the detection with the most detections captioned within 0.9
    const detections = [...new Set([...seeds, ...observedSeeds])].sort((a, b) => a - b);
    const captions = readNpyMatrix(join(out, `caption-embeddings-epoch${round.epoch}.npy`));
    const cos = (i: number, j: number) => rowCosine(captions.data, i, captions.data, j, captions.cols);
    const sizes = detections.map((a) => detections.filter((b) => cos(a, b) >= 0.9).length);
    const anchor = detections[sizes.indexOf(Math.max(...sizes))];
    const group = detections.filter((j) => cos(anchor, j) >= 0.9);
    expect(group.length).toBeLessThan(detections.length); // the group leaves detections out: the two fits differ
    expect(round.probeConcept).toMatchObject({ seeds: group.length, dominant: conceptDominance === 0 });
    const fitted = conceptDominance === 0 ? group : [...seeds].sort((a, b) => a - b);
    expect(round.probePositives).toBe(fitted.length);
    expect(probeFitted.slice().sort((a, b) => a - b)).toEqual(fitted);
  });

  it('retrain mode trains, scores once with the final model, and retrains from scratch on the kept set', async () => {
    const out = tempDir();
    const config = tinyConfig({
      out,
      data: { size: 384 },
      train: { epochs: 2 },
      poison: { attack: 'blended', count: 8, target: 'red circle' },
      filter: { enabled: true, mode: 'retrain', dropFraction: 0.05, referenceSize: 128, k: 8, probe: { enabled: false } },
    });
    const result = await runPipeline(config);
    const filter = result.summary.filter as FilterSummary & { phase1: { outDir: string; attackSuccessRate: number } };
    expect(filter.rounds).toHaveLength(1);
    expect(filter.rounds[0].epoch).toBe(2);
    expect(filter.rounds[0].droppedTotal).toBe(Math.round(0.05 * 384));
    expect(filter.phase1.outDir).toBe(join(out, 'phase1'));
    expect(result.summary.epochs).toHaveLength(2);
    expect(result.summary.epochs.every((e) => e.activeSamples === 384 - 19)).toBe(true);
  });
});

describe('filter.embedFrom: training', () => {
  const run = async (embedFrom: 'snapshot' | 'training', train: Record<string, number>) => {
    const out = tempDir();
    const config = tinyConfig({
      out,
      data: { size: 256 },
      train: { epochs: 3, ...train },
      poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
      filter: { enabled: true, warmupEpochs: 1, rewindAfter: 0, referenceSize: 128, referenceRepeats: 1, k: 8, probe: { seedZ: 4, minSeeds: 2 }, saveEmbeddings: true, embedFrom },
    });
    const result = await runPipeline(config);
    const filter = result.summary.filter as FilterSummary;
    const saved = filter.rounds.map((r) => readNpyMatrix(join(out, `embeddings-epoch${r.epoch}.npy`)).data);
    return { filter, saved, epochs: result.summary.epochs };
  };

  it.each([1, 2])('takes every trained sample from its training step and the rest from the encoder (%i step workers)', async (workers) => {
    // A learning rate too small to move the model: a step's embeddings are then the encoder's after the epoch, row for row.
    const still = { lr: 1e-12, workers };
    const snapshot = await run('snapshot', still);
    const training = await run('training', still);
    expect(training.filter.embedFrom).toBe('training');
    expect(training.filter.rounds.map((r) => r.epoch)).toEqual([1, 2]);
    training.filter.rounds.forEach((r, t) => {
      // every sample the epoch trained on, and only those
      expect(r.capturedRows).toBe(training.epochs[t].activeSamples);
      expect(snapshot.filter.rounds[t].capturedRows).toBe(0);
      expect(r.droppedTotal).toBe(snapshot.filter.rounds[t].droppedTotal);
    });
    // round 2 embedded the samples round 1 dropped with the encoder
    expect(training.filter.rounds[1].capturedRows).toBeLessThan(256);
    for (let t = 0; t < 2; t++) {
      const a = snapshot.saved[t];
      const b = training.saved[t];
      let worst = 0;
      for (let f = 0; f < a.length; f++) worst = Math.max(worst, Math.abs(a[f] - b[f]) / (Math.abs(a[f]) + 1e-3));
      expect(worst).toBeLessThan(1e-4);
    }
  });

  it('records embeddings of a model that moves during the epoch', async () => {
    const snapshot = await run('snapshot', {});
    const training = await run('training', {});
    const a = snapshot.saved[0];
    const b = training.saved[0];
    let worst = 0;
    for (let f = 0; f < a.length; f++) worst = Math.max(worst, Math.abs(a[f] - b[f]));
    expect(worst).toBeGreaterThan(1e-3);
    expect(training.filter.rounds[0].capturedRows).toBe(training.epochs[0].activeSamples);
  });
});

describe('the displacement view', () => {
  it('scores the movement of the images alone when the captions join the embeddings\' references (embedding: image+text)', async () => {
    const config = tinyConfig({
      out: tempDir(),
      data: { size: 256 },
      train: { epochs: 3 },
      poison: { attack: 'badnets', position: 'fixed', count: 8, target: 'red circle' },
      filter: { enabled: true, embedding: 'image+text', warmupEpochs: 2, observeEpochs: 0, rewindAfter: 0, referenceSize: 128, referenceRepeats: 1, k: 8, probe: { seedZ: 4, minSeeds: 2 } },
    });
    const filter = (await runPipeline(config)).summary.filter as FilterSummary;
    expect(filter.rounds.map((r) => r.epoch)).toEqual([2]);
    expect(filter.rounds[0].viewAuroc?.displacement).toBeGreaterThanOrEqual(0);
  });

  it('subtracts each scored row\'s anchor row (rows in scored order, the anchor in sample-index order)', () => {
    const embeddings = Float32Array.from([1, 2, 10, 20]); // rows of samples 2 and 0, d = 2
    const anchor = Float32Array.from([0.5, 0.5, 9, 9, 3, 5]); // samples 0, 1, 2
    expect(Array.from(displacementRows(embeddings, anchor, Int32Array.from([2, 0]), 2))).toEqual([-2, -3, 9.5, 19.5]);
  });

  it('takes the larger robust z of two views, +Infinity staying the most suspicious', () => {
    // a: median 2, MAD 1 -> scale 1.4826; b's finite scores: median 15, MAD 10 -> scale 14.826
    const a = Float64Array.from([1, 2, 3, 2, 9]);
    const b = Float64Array.from([0, 10, 20, 100, Infinity]);
    const z = largerRobustZ(a, b);
    const expected = [-1 / 1.4826, 0, 1 / 1.4826, 85 / 14.826, Infinity];
    z.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
  });
});

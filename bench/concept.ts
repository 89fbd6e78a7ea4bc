/**
 * The caption concept of the confident detections (src/filter/concept.ts),
 * which the trigger probe (`filter.probe.concept`) computes every round and
 * the re-admission once: seedConcept against a baseline in this process
 * that computes each cosine where a comparison needs it (the implementation
 * before the closeness matrix), on templated captions — `concepts` caption
 * clusters with jitter — of the size a Fashion-MNIST round has (~900
 * detections) and larger. Both must return the same group.
 *
 *   npm run build && node dist/bench/concept.js [--sizes 900,3000] [--d 128] [--repeats 3]
 */
import { seedConcept, type SeedConcept } from '../src/filter/concept.js';
import { normalizeRows } from '../src/util/rows.js';
import { Rng } from '../src/util/rng.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const SIZES = arg('sizes', '900,3000').split(',').map(Number);
const D = Number(arg('d', '128'));
const REPEATS = Number(arg('repeats', '3'));
const CONCEPTS = 10;
const SIMILARITY = 0.7;

/** The baseline: a cosine computed for every comparison, as many times as the grouping asks for it. */
function baselineConcept(captions: Float32Array, d: number, m: number, similarity: number): SeedConcept {
  const unit = normalizeRows(captions, d);
  const dot = (i: number, j: number) => {
    let s = 0;
    for (let f = 0; f < d; f++) s += unit[i * d + f] * unit[j * d + f];
    return s;
  };
  const largest = (among: Uint8Array) => {
    let anchor = -1;
    let size = 0;
    for (let a = 0; a < m; a++) {
      if (!among[a]) continue;
      let count = 0;
      for (let b = 0; b < m; b++) if (among[b] && dot(a, b) >= similarity) count++;
      if (count > size) [anchor, size] = [a, count];
    }
    return { anchor, size };
  };
  const among = new Uint8Array(m).fill(1);
  const anchor = Math.max(0, largest(among).anchor);
  const group: number[] = [];
  for (let b = 0; b < m; b++) if (dot(anchor, b) >= similarity) group.push(b);
  for (let b = 0; b < m; b++) if (group.some((t) => dot(t, b) >= similarity)) among[b] = 0;
  return { anchor, seeds: Int32Array.from(group), runnerUp: largest(among).size };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rng = new Rng(0, 'bench/concept');
const rows: string[] = [];
for (const m of SIZES) {
  const centres = Array.from({ length: CONCEPTS }, () => Float32Array.from({ length: D }, () => rng.float() - 0.5));
  const captions = new Float32Array(m * D);
  for (let i = 0; i < m; i++) for (let f = 0; f < D; f++) captions[i * D + f] = centres[i % CONCEPTS][f] + 0.05 * (rng.float() - 0.5);
  const all = Int32Array.from({ length: m }, (_, i) => i);
  const ours: number[] = [];
  const baseline: number[] = [];
  let same = true;
  for (let r = 0; r < REPEATS; r++) {
    let t = performance.now();
    const got = seedConcept(captions, D, all, SIMILARITY)!;
    ours.push((performance.now() - t) / 1000);
    t = performance.now();
    const want = baselineConcept(captions, D, m, SIMILARITY);
    baseline.push((performance.now() - t) / 1000);
    same &&= got.anchor === want.anchor && got.runnerUp === want.runnerUp && got.seeds.join() === want.seeds.join();
  }
  const result = { bench: 'concept', detections: m, d: D, seconds: median(ours), baseline_seconds: median(baseline), speedup: median(baseline) / median(ours), same_group: same ? 1 : 0 };
  console.log(JSON.stringify(result));
  rows.push(`  ${String(m).padStart(6)} detections   ${result.seconds.toFixed(3)} s   baseline ${result.baseline_seconds.toFixed(3)} s   ${result.speedup.toFixed(1)}x   same group: ${same}`);
}
console.log(['', `caption concept (d = ${D}, ${CONCEPTS} caption clusters, similarity ${SIMILARITY}), median of ${REPEATS}:`, ...rows].join('\n'));

/**
 * Neighbours + local outlier scores on synthetic clustered embeddings with a
 * planted tight poison group, for the three reference schemes of the filter:
 *
 * - `sampled`: random reference sets of R points (default 2048), SLOF and
 *   k-distance inside each (Detector.scoreAsync on worker threads);
 * - `exact`: whole-set exact neighbours (parallelExactNeighbors), then SLOF
 *   and k-distance over that graph;
 * - `hnsw`: whole-set HNSW neighbours (parallelHnswNeighbors: one
 *   hnswlib-node index per thread), then the same scores;
 * - `ivf probes=p`: whole-set neighbours by an inverted file, round(sqrt n)
 *   k-means lists of which every point searches its p nearest, with the
 *   exact kernels (parallelIvfNeighbors), then the same scores.
 *
 * Plus in-thread and previous-implementation arms for speed-ups (`sampled-1t`
 * in-thread wasm kernels, `sampled-tfjs` the tfjs blocked matMul + top-k
 * search, `hnsw-1t` one hnswlib index in one thread), each in its own child
 * process so that its peak memory (maxRSS) is its own. Recall@k is measured
 * against exact neighbours of a sample of queries. When /usr/bin/python3
 * has numpy, faiss and scikit-learn, the same data (.npy) goes through the
 * peers of bench/peers/knn_peers.py in the same run (faiss exact + numpy
 * SLOF, faiss on the same sampled reference sets, faiss HNSW over a range of
 * efSearch, faiss IndexIVFFlat with the same lists and probes, scikit-learn
 * LocalOutlierFactor), and the table prints ours/peer
 * time ratios. Configurations that would take too long are extrapolated
 * from a measured part and marked so.
 *
 *   npm run build && node dist/bench/knn.js [--n 10000,100000,1000000] [--d 256] [--k 16]
 *       [--R 2048] [--repeats 1] [--threads N] [--methods exact,hnsw,sampled,...] [--no-peers]
 *       [--hnsw 16,200,64] [--ivf 8,16] [--faiss-ef 16,32,64,128] [--queries 1000] [--poison 0.001]
 *       [--clusters 20] [--intrinsic 16] [--groups 1] [--dir /tmp/cbf-knn-bench]
 *       [--peers faiss_sampled,faiss_exact,sklearn_lof,faiss_hnsw,faiss_ivf]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select.js';
import { createDetector } from '../src/detectors/index.js';
import { scoreGraph } from '../src/detectors/local.js';
import { scoreOverReferences } from '../src/detectors/runner.js';
import { auroc } from '../src/metrics/detection.js';
import { exactNeighbors } from '../src/neighbors/exact.js';
import { hnswNeighbors } from '../src/neighbors/hnsw.js';
import { parallelExactNeighbors, parallelQueryNeighbors } from '../src/neighbors/parallel/exact.js';
import { parallelHnswNeighbors } from '../src/neighbors/parallel/hnsw.js';
import { parallelIvfNeighbors } from '../src/neighbors/parallel/ivf.js';
import { closeKnnPool, defaultThreads } from '../src/neighbors/parallel/pool.js';
import { DEFAULT_SEARCH, referencePlan, type NeighborSearchOptions } from '../src/neighbors/search.js';
import type { NeighborGraph } from '../src/neighbors/types.js';
import { readNpy, writeNpy } from '../src/util/npy.js';
import { Rng } from '../src/util/rng.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const has = (name: string) => process.argv.includes(`--${name}`);

const PYTHON = '/usr/bin/python3';
const HERE = fileURLToPath(new URL('.', import.meta.url));
const PEERS = join(HERE, '..', '..', 'bench', 'peers', 'knn_peers.py');

/** What one child process measures. */
interface ChildSpec {
  method: 'sampled' | 'sampled-1t' | 'sampled-tfjs' | 'exact' | 'hnsw' | 'hnsw-1t' | 'ivf';
  dir: string;
  k: number;
  R: number;
  threads: number;
  hnsw: { M: number; efConstruction: number; efSearch: number };
  ivfProbes: number;
}

interface Result {
  config: string;
  n: number;
  d: number;
  k: number;
  seconds: number | null;
  extrapolated?: string | null;
  recall?: number | null;
  auroc_slof?: number | null;
  auroc_kdist?: number | null;
  peak_rss_mb?: number | null;
  max_rss_mb?: number | null;
  cpu_seconds?: number | null;
  [key: string]: unknown;
}

// ---------------------------------------------------------------- data

/**
 * Clustered float32 embeddings: `clusters` Gaussian clusters with centres
 * N(0, 3^2) per coordinate (a fixed number, like the classes or concepts of
 * a real set, so a reference set of R points holds ~R/clusters of each),
 * each spread over a random `intrinsic`-dimensional subspace (unit variance
 * per coordinate) plus isotropic noise of 0.1 — learned embeddings have a
 * low local intrinsic dimension (the LID of DAO); `intrinsic` 0 spreads
 * them isotropically over all d dimensions instead, the worst case for any
 * approximate search (every point's neighbours are scattered over its whole
 * cluster). Plus `rate` x n poisons in `groups` tight groups (isotropic
 * spread 0.05) around centres drawn like cluster centres. Whole-set
 * neighbours see a group as dense once it has more than k members (100
 * poisons at 100k); sampled reference sets hold ~R x rate of them, fewer
 * than k.
 */
function syntheticEmbeddings(n: number, d: number, rate: number, seed: number, clusters: number, groups: number, intrinsic: number): { x: Float32Array; labels: Uint8Array } {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    // mulberry32: fast, and plenty for test data
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare = NaN;
  const normal = () => {
    if (spare === spare) {
      const v = spare;
      spare = NaN;
      return v;
    }
    const u = 1 - uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * uniform();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
  const centres = new Float32Array(clusters * d).map(() => 3 * normal());
  const r = intrinsic > 0 ? Math.min(intrinsic, d) : 0;
  // per cluster a d x r basis with N(0, 1/r) entries: unit variance per coordinate
  const bases = r ? new Float32Array(clusters * d * r).map(() => normal() / Math.sqrt(r)) : null;
  const z = new Float64Array(r);
  const poisonCentres = new Float32Array(groups * d).map(() => 3 * normal());
  const poisons = Math.max(1, Math.round(n * rate));
  const x = new Float32Array(n * d);
  const labels = new Uint8Array(n);
  // poisons at random rows
  const order = new Int32Array(n).map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const group = new Int32Array(n);
  for (let t = 0; t < poisons; t++) {
    labels[order[t]] = 1;
    group[order[t]] = t % groups;
  }
  for (let i = 0; i < n; i++) {
    const o = i * d;
    if (labels[i]) for (let f = 0; f < d; f++) x[o + f] = poisonCentres[group[i] * d + f] + 0.05 * normal();
    else {
      const cl = Math.floor(uniform() * clusters);
      const c = cl * d;
      if (!bases) for (let f = 0; f < d; f++) x[o + f] = centres[c + f] + normal();
      else {
        for (let j = 0; j < r; j++) z[j] = normal();
        const b = cl * d * r;
        for (let f = 0; f < d; f++) {
          let v = centres[c + f] + 0.1 * normal();
          for (let j = 0; j < r; j++) v += bases[b + f * r + j] * z[j];
          x[o + f] = v;
        }
      }
    }
  }
  return { x, labels };
}

// ---------------------------------------------------------------- child side

function loadData(dir: string): { x: Float32Array; n: number; d: number; labels: Uint8Array; queries: Int32Array; truth: Int32Array } {
  const X = readNpy(join(dir, 'X.npy'));
  return {
    x: X.data as Float32Array,
    n: X.shape[0],
    d: X.shape[1],
    labels: readNpy(join(dir, 'labels.npy')).data as Uint8Array,
    queries: readNpy(join(dir, 'queries.npy')).data as Int32Array,
    truth: readNpy(join(dir, 'truth.npy')).data as Int32Array,
  };
}

function recallOf(graph: NeighborGraph, queries: Int32Array, truth: Int32Array, k: number): number {
  let hits = 0;
  for (let t = 0; t < queries.length; t++) {
    const want = new Set(truth.subarray(t * k, t * k + k));
    const row = queries[t] * graph.k;
    for (let j = 0; j < k; j++) if (want.has(graph.indices[row + j])) hits++;
  }
  return hits / (queries.length * k);
}

async function child(spec: ChildSpec): Promise<void> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
  const { x, n, d, labels, queries, truth } = loadData(spec.dir);
  const k = spec.k;
  const search: NeighborSearchOptions = { ...DEFAULT_SEARCH, reference: 'sampled', referenceSize: spec.R, referenceRepeats: 1, threads: spec.threads };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out: Record<string, unknown> = {};
  const graphScores = (g: NeighborGraph) => {
    out.auroc_slof = auroc(scoreGraph('slof', g, d), labels);
    out.auroc_kdist = auroc(scoreGraph('kdist', g, d), labels);
    out.recall = recallOf(g, queries, truth, k);
  };
  switch (spec.method) {
    case 'sampled':
    case 'sampled-1t': {
      // Two detectors, two searches: SLOF is the timed configuration, k-distance its companion.
      const input = { embeddings: x, n, d, k, rng: new Rng(1, 'bench-knn') };
      const slofDet = createDetector('slof', { search });
      const slof = spec.method === 'sampled' ? await slofDet.scoreAsync(input) : slofDet.score(input);
      out.seconds_slof = (performance.now() - t0) / 1000;
      const cpuSlof = process.cpuUsage(cpu0);
      out.cpu_seconds_slof = (cpuSlof.user + cpuSlof.system) / 1e6;
      out.auroc_slof = auroc(slof, labels);
      const t1 = performance.now();
      const kdDet = createDetector('kdist', { search });
      const kd = spec.method === 'sampled' ? await kdDet.scoreAsync({ ...input, rng: new Rng(1, 'bench-knn') }) : kdDet.score({ ...input, rng: new Rng(1, 'bench-knn') });
      out.seconds_kdist = (performance.now() - t1) / 1000;
      out.auroc_kdist = auroc(kd, labels);
      out.recall = null;
      break;
    }
    case 'sampled-tfjs': {
      await selectBackend('wasm');
      const scores = scoreOverReferences({ embeddings: x, n, d, k, rng: new Rng(1, 'bench-knn') }, search, k + 1, false, (set) =>
        scoreGraph('slof', exactNeighbors(set.embeddings, set.m, set.d, set.k, { distance: 'l2' }), set.d),
      );
      out.seconds_slof = (performance.now() - t0) / 1000;
      out.auroc_slof = auroc(scores, labels);
      out.backend = tf.getBackend();
      break;
    }
    case 'exact':
      graphScores(await parallelExactNeighbors(x, n, d, k, { threads: spec.threads }));
      break;
    case 'hnsw':
      graphScores(await parallelHnswNeighbors(x, n, d, k, { ...spec.hnsw, threads: spec.threads, seed: 1 }));
      break;
    case 'hnsw-1t':
      graphScores(hnswNeighbors(x, n, d, k, { ...spec.hnsw, seed: 1 }));
      break;
    case 'ivf':
      graphScores(await parallelIvfNeighbors(x, n, d, k, { probes: spec.ivfProbes, threads: spec.threads, seed: 1 }));
      break;
  }
  const seconds = (out.seconds_slof as number | undefined) ?? (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  await closeKnnPool();
  console.log(
    JSON.stringify({
      ...out,
      seconds,
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
      peak_rss_mb: peak / 2 ** 20,
      max_rss_mb: process.resourceUsage().maxRSS / 1024,
    }),
  );
}

// ---------------------------------------------------------------- parent side

function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('error', reject);
    p.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${cmd} ${args.slice(0, 2).join(' ')} exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`${cmd} printed no JSON: ${last.slice(0, 200)}`));
      }
    });
  });
}

function peersAvailable(): Promise<boolean> {
  if (!existsSync(PYTHON)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const p = spawn(PYTHON, ['-c', 'import numpy, faiss, sklearn'], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('close', (code) => resolve(code === 0));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const fmt = (v: unknown, digits = 3) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : v === null || v === undefined ? '-' : String(v));

async function main(): Promise<void> {
  if (has('child')) return child(JSON.parse(flag('child', '{}')) as ChildSpec);
  const sizes = flag('n', '10000,100000').split(',').map(Number);
  const d = Number(flag('d', '256'));
  const k = Number(flag('k', '16'));
  const R = Number(flag('R', '2048'));
  const repeats = Number(flag('repeats', '1'));
  const threads = Number(flag('threads', String(defaultThreads())));
  const queryCount = Number(flag('queries', '1000'));
  const rate = Number(flag('poison', '0.001'));
  const clusters = Number(flag('clusters', '20'));
  const groups = Number(flag('groups', '1'));
  const intrinsic = Number(flag('intrinsic', '16'));
  const root = flag('dir', '/tmp/cbf-knn-bench');
  const [M, efConstruction, efSearch] = flag('hnsw', '16,200,64').split(',').map(Number);
  const methods = new Set(flag('methods', 'sampled,sampled-1t,sampled-tfjs,exact,hnsw,hnsw-1t,ivf').split(','));
  const ivfProbes = flag('ivf', '8,16').split(',').map(Number);
  const peers = !has('no-peers') && (await peersAvailable());
  const peerSet = new Set(flag('peers', 'faiss_sampled,faiss_exact,sklearn_lof,faiss_hnsw,faiss_ivf').split(','));
  const self = fileURLToPath(import.meta.url);
  const results: Result[] = [];
  const emit = (r: Result) => {
    results.push(r);
    console.log(JSON.stringify(r));
  };
  console.error(
    `knn bench: n = ${sizes.join(', ')}, d = ${d}, k = ${k}, R = ${R}, threads = ${threads}, ${clusters} clusters of intrinsic dimension ${intrinsic || d}, poison rate ${rate} in ${groups} group(s), ` +
      `peers ${peers ? 'on' : 'off (no python3 with numpy+faiss+sklearn)'}`,
  );

  for (const n of sizes) {
    const dir = join(root, `n${n}-d${d}-c${clusters}-r${intrinsic}`);
    mkdirSync(dir, { recursive: true });
    const { x, labels } = syntheticEmbeddings(n, d, rate, 12345 + n, clusters, groups, intrinsic);
    writeNpy(join(dir, 'X.npy'), x, [n, d]);
    writeNpy(join(dir, 'labels.npy'), labels, [n]);
    // the same reference sets for the faiss peer (the plan draws as the detector does)
    const plan = referencePlan(n, k, k + 1, { referenceSize: R, referenceRepeats: 1 }, new Rng(1, 'bench-knn'));
    const chunks = new Int32Array(n);
    const bounds = new Int32Array(plan[0].length + 1);
    plan[0].forEach((c, i) => {
      chunks.set(c, bounds[i]);
      bounds[i + 1] = bounds[i] + c.length;
    });
    writeNpy(join(dir, 'chunks.npy'), chunks, [n]);
    writeNpy(join(dir, 'bounds.npy'), bounds, [bounds.length]);
    const qrng = new Rng(7, 'bench-queries');
    const queries = Int32Array.from({ length: Math.min(queryCount, n) }, () => qrng.int(n));
    const t0 = performance.now();
    const truth = await parallelQueryNeighbors(x, n, d, queries, k, { threads });
    const truthSeconds = (performance.now() - t0) / 1000;
    writeNpy(join(dir, 'queries.npy'), queries, [queries.length]);
    writeNpy(join(dir, 'truth.npy'), truth.indices, [queries.length, k]);
    await closeKnnPool();
    console.error(`n = ${n}: data written to ${dir}; exact neighbours of ${queries.length} queries in ${truthSeconds.toFixed(1)} s`);

    const tooBig = (m: string) =>
      (m === 'exact' && n > 200_000) || (m === 'sampled-tfjs' && n > 200_000) || (m === 'sampled-1t' && n > 200_000) || (m === 'hnsw-1t' && n > 200_000);
    const arms: [ChildSpec['method'], number][] = (['sampled', 'sampled-1t', 'sampled-tfjs', 'exact', 'hnsw', 'hnsw-1t', 'ivf'] as const).flatMap((m): [ChildSpec['method'], number][] =>
      m === 'ivf' ? ivfProbes.map((p): [ChildSpec['method'], number] => [m, p]) : [[m, 0]],
    );
    for (const [method, probes] of arms) {
      if (!methods.has(method)) continue;
      if (tooBig(method)) {
        if (method === 'exact') {
          // Quadratic: extrapolate from the largest exact run of this invocation.
          const prev = results.filter((r) => r.config === 'exact' && r.d === d && r.seconds !== null && !r.extrapolated).sort((a, b) => b.n - a.n)[0];
          emit({ config: 'exact', n, d, k, threads, seconds: prev ? prev.seconds! * (n / prev.n) ** 2 : null, extrapolated: prev ? `from n = ${prev.n}, x (n ratio)^2` : 'skipped', recall: 1 });
        }
        continue;
      }
      const spec: ChildSpec = { method, dir, k, R, threads: method.endsWith('-1t') ? 1 : threads, hnsw: { M, efConstruction, efSearch }, ivfProbes: probes };
      const runs: Record<string, unknown>[] = [];
      for (let r = 0; r < (method.startsWith('sampled') ? repeats : 1); r++) {
        try {
          runs.push(await runProcess(process.execPath, [self, '--child', JSON.stringify(spec)]));
        } catch (e) {
          console.error(`${method} n = ${n}: ${(e as Error).message}`);
        }
      }
      if (runs.length === 0) continue;
      const secs = runs.map((r) => r.seconds as number);
      emit({
        config: method === 'ivf' ? `ivf probes=${probes}` : method,
        n,
        d,
        k,
        threads: spec.threads,
        ...(method === 'hnsw' || method === 'hnsw-1t' ? { hnsw: spec.hnsw } : {}),
        ...(method === 'ivf' ? { probes } : {}),
        ...(method.startsWith('sampled') ? { R, referenceRepeats: 1 } : {}),
        ...runs[0],
        seconds: median(secs),
        seconds_runs: secs,
        extrapolated: null,
      } as Result);
    }

    if (peers) {
      const env = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' };
      const py = async (name: string, extra: string[]) => {
        try {
          return await runProcess(PYTHON, [PEERS, name, '--dir', dir, '--k', String(k), '--threads', String(threads), ...extra], env);
        } catch (e) {
          console.error(`peer ${name} n = ${n}: ${(e as Error).message}`);
          return null;
        }
      };
      const fs = peerSet.has('faiss_sampled') ? await py('faiss_sampled', []) : null;
      if (fs) emit({ config: 'peer:faiss_sampled', n, d, k, ...fs, seconds: fs.seconds as number } as Result);
      const fe = peerSet.has('faiss_exact') ? await py('faiss_exact', ['--max-queries', '200000']) : null;
      if (fe) emit({ config: 'peer:faiss_exact', n, d, k, ...fe, seconds: fe.seconds as number } as Result);
      if (!peerSet.has('sklearn_lof')) {
        // not requested
      } else if (n <= 200_000) {
        const sk = await py('sklearn_lof', []);
        if (sk) emit({ config: 'peer:sklearn_lof', n, d, k, ...sk, seconds: sk.seconds as number } as Result);
      } else {
        const prev = results.filter((r) => r.config === 'peer:sklearn_lof' && r.d === d && !r.extrapolated).sort((a, b) => b.n - a.n)[0];
        emit({ config: 'peer:sklearn_lof', n, d, k, seconds: prev ? prev.seconds! * (n / prev.n) ** 2 : null, extrapolated: prev ? `from n = ${prev.n}, x (n ratio)^2` : 'skipped' });
      }
      const fh = peerSet.has('faiss_hnsw') ? await py('faiss_hnsw', ['--M', String(M), '--efc', String(efConstruction), '--ef', flag('faiss-ef', '16,32,64,128')]) : null;
      if (fh) {
        for (const run of fh.runs as Record<string, number>[]) {
          emit({ config: `peer:faiss_hnsw ef=${run.ef}`, n, d, k, threads, M, efConstruction, build_seconds: fh.build_seconds, max_rss_mb: fh.maxrss_mb as number, ...run, seconds: run.seconds });
        }
      }
      const fi = peerSet.has('faiss_ivf') && methods.has('ivf') ? await py('faiss_ivf', ['--probes', ivfProbes.join(',')]) : null;
      if (fi) {
        for (const run of fi.runs as Record<string, number>[]) {
          emit({ config: `peer:faiss_ivf probes=${run.probes}`, n, d, k, threads, lists: fi.lists, build_seconds: fi.build_seconds, max_rss_mb: fi.maxrss_mb as number, ...run, seconds: run.seconds });
        }
      }
    }
  }
  printTable(results);
}

/** ours/peer ratios at each n: sampled vs faiss on the same sets, exact vs faiss exact, hnsw vs faiss HNSW at >= its recall (and >= 0.99), and vs scikit-learn. */
function printTable(results: Result[]): void {
  const lines: string[] = [];
  lines.push('');
  lines.push('config                        n        seconds   recall  AUROC slof  AUROC kdist  peak RSS MB  maxRSS MB  cores');
  for (const r of results) {
    const cpu = (r.cpu_seconds_slof ?? r.cpu_seconds) as number | undefined;
    const cores = typeof cpu === 'number' && r.seconds && !r.extrapolated ? cpu / r.seconds : null;
    lines.push(
      `${r.config.padEnd(28)} ${String(r.n).padStart(8)} ${fmt(r.seconds, 2).padStart(10)}${r.extrapolated ? '*' : ' '} ${fmt(r.recall).padStart(7)} ${fmt(r.auroc_slof ?? r.auroc_lof).padStart(11)} ${fmt(r.auroc_kdist).padStart(12)} ${fmt(r.peak_rss_mb, 0).padStart(12)} ${fmt(r.max_rss_mb ?? r.maxrss_mb, 0).padStart(10)} ${fmt(cores, 2).padStart(6)}`,
    );
  }
  lines.push('* extrapolated (see the JSON line)');
  lines.push('');
  lines.push('ratios ours/peer (time; < 1 = ours faster):');
  for (const n of [...new Set(results.map((r) => r.n))]) {
    const get = (c: string) => results.find((r) => r.n === n && r.config === c);
    const ratio = (a?: Result, b?: Result) => (a?.seconds && b?.seconds ? a.seconds / b.seconds : null);
    const parts: string[] = [];
    parts.push(`sampled/faiss_sampled ${fmt(ratio(get('sampled'), get('peer:faiss_sampled')), 2)}`);
    parts.push(`sampled/sampled-tfjs ${fmt(ratio(get('sampled'), get('sampled-tfjs')), 3)}`);
    parts.push(`exact/faiss_exact ${fmt(ratio(get('exact'), get('peer:faiss_exact')), 2)}`);
    parts.push(`exact/sklearn_lof ${fmt(ratio(get('exact'), get('peer:sklearn_lof')), 2)}`);
    // faiss HNSW at "equal recall": its fastest efSearch reaching min(ours, 0.99), the target's bar
    const matched = (recall: number) =>
      results.filter((r) => r.n === n && r.config.startsWith('peer:faiss_hnsw') && Number(r.recall) >= Math.min(recall, 0.99) - 1e-9).sort((a, b) => a.seconds! - b.seconds!)[0];
    const ours = get('hnsw');
    if (ours) {
      const faiss = matched(Number(ours.recall));
      parts.push(`hnsw(recall ${fmt(ours.recall)})/faiss_hnsw(${faiss ? `${faiss.config.split(' ')[1]}, recall ${fmt(faiss.recall)}` : 'none at that recall'}) ${fmt(ratio(ours, faiss), 2)}`);
      parts.push(`hnsw/sklearn_lof ${fmt(ratio(ours, get('peer:sklearn_lof')), 2)}`);
      parts.push(`hnsw/hnsw-1t ${fmt(ratio(ours, get('hnsw-1t')), 2)}`);
    }
    for (const ivf of results.filter((r) => r.n === n && r.config.startsWith('ivf'))) {
      const faiss = matched(Number(ivf.recall));
      parts.push(`${ivf.config}(recall ${fmt(ivf.recall)})/faiss_hnsw(${faiss ? `${faiss.config.split(' ')[1]}, recall ${fmt(faiss.recall)}` : 'none at that recall'}) ${fmt(ratio(ivf, faiss), 2)}`);
      parts.push(`${ivf.config}/sklearn_lof ${fmt(ratio(ivf, get('peer:sklearn_lof')), 2)}`);
      const same = get(`peer:faiss_${ivf.config}`);
      parts.push(`${ivf.config}/faiss_ivf(recall ${fmt(same?.recall)}) ${fmt(ratio(ivf, same), 2)}`);
    }
    lines.push(`n = ${n}: ${parts.join('; ')}`);
  }
  console.log(lines.join('\n'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

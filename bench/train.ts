/**
 * Training-step throughput of the default quickstart and Fashion-MNIST
 * models on the current backend, against baselines measured in the same run:
 *
 * - `tfjs-default`: the same step with tfjs's own matMul gradient and gather
 *   (kernels.ts fast paths off; the two missing wasm kernels stay, or nothing
 *   trains);
 * - `ours`: the in-thread step (explicit-transpose gradients, row gather);
 * - `ours-workers`: data-parallel worker threads (train.workers);
 * - `ours-kernel`, `ours-kernel-workers`: the same two on the wasm GEMM
 *   kernels (train.kernel auto, src/train/kernelStep.ts); `ours` and
 *   `ours-workers` are the tfjs-op step (train.kernel off);
 * - the achieved GFLOP/s of `ours` and `ours-kernel` against a plain matMul of the first layer's
 *   shape timed in this process (what the backend can do at all);
 * - PyTorch on the same architecture with the same thread count, when
 *   Debian's python3-torch is installed (bench/peers/torch_train.py).
 *
 * Arms alternate round by round so that other load hits them alike; medians
 * and ranges over rounds are printed, with the cores the process obtained.
 *
 *   npm run bench -- train [--rounds 5] [--steps 6] [--workers 2] [--backend wasm] [--models quickstart,fashion-mnist]
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useFastPaths } from '../src/backend/kernels.js';
import { selectBackend, type BackendRequest } from '../src/backend/select.js';
import type { RawBatch } from '../src/data/stream.js';
import { Tokenizer } from '../src/data/tokenizer.js';
import { ClipModel } from '../src/model/clip.js';
import type { ClipArchitecture } from '../src/model/towers.js';
import { WorkerStepper } from '../src/train/parallel/workerStepper.js';
import { LocalStepper, type StepRunner } from '../src/train/stepper.js';
import { Rng } from '../src/util/rng.js';

const flag = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const ROUNDS = Number(flag('rounds', '5'));
const STEPS = Number(flag('steps', '6'));
const WORKERS = Number(flag('workers', '2'));
const BACKEND = flag('backend', 'wasm') as BackendRequest;
const MODELS = flag('models', 'quickstart,fashion-mnist').split(',');

interface BenchModel {
  name: string;
  batch: number;
  arch: ClipArchitecture;
  normalization: { mean: number[]; std: number[] };
}

const WORDS = Array.from({ length: 28 }, (_, i) => `word${i}`);
const TOKENIZER = new Tokenizer(['<pad>', '<unk>', ...WORDS], 16);
const base = { convChannels: [16, 32], convDense: 256, vocabSize: TOKENIZER.size, maxTokens: 16, textHidden: [], initTemperature: 0.07, maxLogitScale: 100, imageTower: 'mlp' as const };
const ALL: BenchModel[] = [
  { name: 'quickstart', batch: 128, arch: { ...base, imageShape: [16, 16, 3], hidden: [256, 256], embedDim: 64, textWidth: 128 }, normalization: { mean: [0.4, 0.4, 0.4], std: [0.3, 0.3, 0.3] } },
  { name: 'fashion-mnist', batch: 256, arch: { ...base, imageShape: [28, 28, 1], hidden: [512, 512], embedDim: 128, textWidth: 256 }, normalization: { mean: [0.286], std: [0.353] } },
];
const OPTIMIZER = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

function batches(m: BenchModel, count: number): RawBatch[] {
  const rng = new Rng(7);
  const bytes = m.arch.imageShape.reduce((a, b) => a * b, 1);
  return Array.from({ length: count }, () => {
    const pixels = new Uint8Array(m.batch * bytes);
    for (let i = 0; i < pixels.length; i++) pixels[i] = rng.int(256);
    const tokens = new Int32Array(m.batch * 16);
    for (let r = 0; r < m.batch; r++) for (let j = 0, n = 3 + rng.int(6); j < n; j++) tokens[r * 16 + j] = 2 + rng.int(WORDS.length);
    return { indices: Int32Array.from({ length: m.batch }, (_, i) => i), pixels, tokens, weights: null };
  });
}

/** Multiply-adds per sample of one forward pass: image tower, text projection, and the sample's row of the logits. */
function forwardMacs(m: BenchModel): number {
  let width = m.arch.imageShape.reduce((a, b) => a * b, 1);
  let macs = 0;
  for (const h of [...m.arch.hidden, m.arch.embedDim]) {
    macs += width * h;
    width = h;
  }
  return macs + m.arch.textWidth * m.arch.embedDim + m.batch * m.arch.embedDim;
}

async function timeSteps(stepper: StepRunner, data: RawBatch[], steps: number, batch: number): Promise<{ rate: number; cores: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await stepper.step(data[s % data.length], 1e-4);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rate: (steps * batch) / seconds, cores: (cpu.user + cpu.system) / 1e6 / seconds };
}

function plainMatMulGflops(rows: number, inner: number, cols: number): number {
  const a = tf.randomNormal([rows, inner]);
  const b = tf.randomNormal([inner, cols]);
  for (let i = 0; i < 3; i++) tf.dispose(tf.matMul(a, b));
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 500) {
    tf.dispose(tf.matMul(a, b));
    n++;
  }
  const seconds = (performance.now() - t0) / 1000;
  tf.dispose([a, b]);
  return (2 * rows * inner * cols * n) / seconds / 1e9;
}

function torchPeer(m: BenchModel, threads: number): number | null {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'peers', 'torch_train.py');
  if (!existsSync('/usr/bin/python3') || !existsSync(script)) return null;
  if (spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) return null;
  const input = m.arch.imageShape.reduce((a, b) => a * b, 1);
  const r = spawnSync(
    '/usr/bin/python3',
    [script, '--input', String(input), '--hidden', m.arch.hidden.join(','), '--embed', String(m.arch.embedDim), '--text-width', String(m.arch.textWidth), '--vocab', String(TOKENIZER.size), '--tokens', '16', '--batch', String(m.batch), '--threads', String(threads), '--seconds', '4'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return null;
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { samples_per_second: number }).samples_per_second;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const range = (xs: number[]) => ({ median: +median(xs).toFixed(0), min: +Math.min(...xs).toFixed(0), max: +Math.max(...xs).toFixed(0) });

async function benchModel(m: BenchModel, backend: string): Promise<Record<string, unknown>> {
  const data = batches(m, 3);
  const models = [0, 1, 2, 3, 4].map(() => ClipModel.create(m.arch, TOKENIZER, m.normalization, 1));
  const tfjsDefault = new LocalStepper(models[0], OPTIMIZER, { kernel: 'off' });
  const kernelLocal = new LocalStepper(models[3], OPTIMIZER, { kernel: 'auto' });
  if (!kernelLocal.usesKernel) throw new Error(`the ${backend} backend or this model does not take the kernel step`);
  const arms: [string, StepRunner, boolean][] = [
    ['tfjs-default', tfjsDefault, false],
    ['ours', new LocalStepper(models[1], OPTIMIZER, { kernel: 'off' }), true],
    [`ours-workers${WORKERS}`, new WorkerStepper(models[2], OPTIMIZER, { workers: WORKERS, backend, seed: 1, kernel: 'off' }), true],
    ['ours-kernel', kernelLocal, true],
    [`ours-kernel-workers${WORKERS}`, new WorkerStepper(models[4], OPTIMIZER, { workers: WORKERS, backend, seed: 1, kernel: 'auto' }), true],
  ];
  for (const [, s, fast] of arms) {
    useFastPaths(fast);
    await timeSteps(s, data, 2, m.batch);
  }
  const rates: Record<string, number[]> = Object.fromEntries(arms.map(([n]) => [n, []]));
  const cores: Record<string, number[]> = Object.fromEntries(arms.map(([n]) => [n, []]));
  const matmul: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    useFastPaths(true);
    matmul.push(plainMatMulGflops(m.batch, m.arch.imageShape.reduce((a, b) => a * b, 1), m.arch.hidden[0]));
    for (let k = 0; k < arms.length; k++) {
      const [name, s, fast] = arms[(r + k) % arms.length];
      useFastPaths(fast);
      const t = await timeSteps(s, data, STEPS, m.batch);
      rates[name].push(t.rate);
      cores[name].push(t.cores);
    }
  }
  useFastPaths(true);
  for (const [, s] of arms) await s.dispose();
  for (const model of models) model.dispose();
  const flopsPerSample = 3 * 2 * forwardMacs(m);
  const ours = median(rates.ours);
  const oursWorkers = median(rates[`ours-workers${WORKERS}`]);
  const kernel = median(rates['ours-kernel']);
  const kernelWorkers = median(rates[`ours-kernel-workers${WORKERS}`]);
  const tfjsDefaultRate = median(rates['tfjs-default']);
  const torch = torchPeer(m, WORKERS);
  return {
    bench: 'train',
    model: m.name,
    backend,
    batch: m.batch,
    samplesPerSecond: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, range(v)])),
    coresUsed: Object.fromEntries(Object.entries(cores).map(([k, v]) => [k, +median(v).toFixed(2)])),
    speedupOverTfjsDefault: +(ours / median(rates['tfjs-default'])).toFixed(2),
    workersOverOurs: +(oursWorkers / ours).toFixed(2),
    achievedGflops: +((ours * flopsPerSample) / 1e9).toFixed(1),
    plainMatMulGflops: +median(matmul).toFixed(1),
    shareOfPlainMatMul: +((ours * flopsPerSample) / 1e9 / median(matmul)).toFixed(2),
    kernelOverTfjsDefault: +(kernel / tfjsDefaultRate).toFixed(2),
    kernelOverOurs: +(kernel / ours).toFixed(2),
    kernelWorkersOverKernel: +(kernelWorkers / kernel).toFixed(2),
    kernelWorkersOverOursWorkers: +(kernelWorkers / oursWorkers).toFixed(2),
    kernelGflops: +((kernel * flopsPerSample) / 1e9).toFixed(1),
    kernelShareOfPlainMatMul: +((kernel * flopsPerSample) / 1e9 / median(matmul)).toFixed(2),
    torchSamplesPerSecond: torch === null ? null : +torch.toFixed(0),
    workersOverTorch: torch === null ? null : +(oursWorkers / torch).toFixed(2),
    kernelWorkersOverTorch: torch === null ? null : +(kernelWorkers / torch).toFixed(2),
  };
}

const backend = await selectBackend(BACKEND);
const results = [];
for (const m of ALL.filter((x) => MODELS.includes(x.name))) {
  const r = await benchModel(m, backend.name);
  console.log(JSON.stringify(r));
  results.push(r);
}
console.log('\nmodel          tfjs-default   ours   workers   ours/default  GFLOP/s (share of plain matMul)  torch  workers/torch');
for (const r of results as Record<string, any>[]) {
  const s = r.samplesPerSecond;
  console.log(
    `${r.model.padEnd(14)} ${String(s['tfjs-default'].median).padStart(12)} ${String(s.ours.median).padStart(6)} ${String(s[`ours-workers${WORKERS}`].median).padStart(9)} ${`${r.speedupOverTfjsDefault}x`.padStart(13)}  ${`${r.achievedGflops} (${Math.round(r.shareOfPlainMatMul * 100)}% of ${r.plainMatMulGflops})`.padStart(31)} ${String(r.torchSamplesPerSecond ?? '–').padStart(6)} ${String(r.workersOverTorch ?? '–').padStart(14)}`,
  );
}
console.log('\nmodel          kernel  kernel-workers  kernel/default  kernel/ours  GFLOP/s (share of plain matMul)  kernel-workers/torch');
for (const r of results as Record<string, any>[]) {
  const s = r.samplesPerSecond;
  console.log(
    `${r.model.padEnd(14)} ${String(s['ours-kernel'].median).padStart(6)} ${String(s[`ours-kernel-workers${WORKERS}`].median).padStart(15)} ${`${r.kernelOverTfjsDefault}x`.padStart(15)} ${`${r.kernelOverOurs}x`.padStart(12)}  ${`${r.kernelGflops} (${Math.round(r.kernelShareOfPlainMatMul * 100)}% of ${r.plainMatMulGflops})`.padStart(31)} ${String(r.kernelWorkersOverTorch ?? '–').padStart(21)}`,
  );
}

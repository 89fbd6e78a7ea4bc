/**
 * Samples/s of a training step in this thread (LocalStepper) against
 * data-parallel worker threads (WorkerStepper), on the Fashion-MNIST-sized
 * model: MLP 784-512-512-128 image tower, bag-of-words text tower of width
 * 256, batch 256, a ~30-word vocabulary. The arms alternate round by round in
 * one process so that other load on the machine hits them alike; the ratio
 * per round and its spread are reported, plus where the worker threads spend
 * their time.
 *
 *   npm run build && node dist/bench/train-parallel.js [--rounds 5] [--steps 8] [--workers 2] [--backend wasm]
 */
import os from 'node:os';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendRequest } from '../src/backend/select.js';
import type { RawBatch } from '../src/data/stream.js';
import { Tokenizer } from '../src/data/tokenizer.js';
import { ClipModel } from '../src/model/clip.js';
import type { ClipArchitecture } from '../src/model/towers.js';
import { PHASES, zeroPhases, type PhaseTimes } from '../src/train/parallel/shared.js';
import { WorkerStepper } from '../src/train/parallel/workerStepper.js';
import { LocalStepper, type StepRunner } from '../src/train/stepper.js';
import { Rng } from '../src/util/rng.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const ROUNDS = Number(flag('rounds', '5'));
const STEPS = Number(flag('steps', '8'));
const WORKERS = Number(flag('workers', '2'));
const BACKEND = flag('backend', 'wasm') as BackendRequest;
const BATCH = 256;
const WORDS = Array.from({ length: 28 }, (_, i) => `word${i}`);
const TOKENIZER = new Tokenizer(['<pad>', '<unk>', ...WORDS], 16);
const ARCH: ClipArchitecture = {
  imageShape: [28, 28, 1],
  imageTower: 'mlp',
  hidden: [512, 512],
  convChannels: [16, 32],
  convDense: 256,
  vocabSize: TOKENIZER.size,
  maxTokens: 16,
  textWidth: 256,
  textHidden: [],
  embedDim: 128,
  initTemperature: 0.07,
  maxLogitScale: 100,
};
const OPTIMIZER = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

function batches(count: number): RawBatch[] {
  const rng = new Rng(7);
  return Array.from({ length: count }, () => {
    const pixels = new Uint8Array(BATCH * 784);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(rng.float() * 256);
    const tokens = new Int32Array(BATCH * 16);
    for (let r = 0; r < BATCH; r++) {
      const n = 3 + Math.floor(rng.float() * 6);
      for (let j = 0; j < n; j++) tokens[r * 16 + j] = 2 + Math.floor(rng.float() * WORDS.length);
    }
    return { indices: Int32Array.from({ length: BATCH }, (_, i) => i), pixels, tokens, weights: null };
  });
}

/** Samples/s, and the cores the process actually got meanwhile (CPU time of all its threads / wall time). */
async function timeSteps(stepper: StepRunner, data: RawBatch[], steps: number): Promise<{ rate: number; cores: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await stepper.step(data[s % data.length], 1e-4);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rate: (steps * BATCH) / seconds, cores: (cpu.user + cpu.system) / 1e6 / seconds };
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
};

/**
 * How much parallel matMul throughput the machine offers right now: the same
 * single-threaded matMul loop in 1 thread, then in 2 threads at once; the
 * ratio of total throughputs (2 = two idle cores). Other processes on the
 * machine lower it, and the speed-up of the worker arm can only be read
 * against it.
 */
class CapacityProbe {
  private readonly threads: Worker[];
  private readonly started: Promise<unknown>;

  constructor(backend: string) {
    this.threads = [0, 1].map(() => new Worker(new URL(import.meta.url), { workerData: null, argv: ['--probe', backend] }));
    this.started = Promise.all(this.threads.map((w) => new Promise((resolve) => w.once('message', resolve))));
  }

  private async run(n: number, ms: number): Promise<number> {
    const counts = await Promise.all(
      this.threads.slice(0, n).map((w) => {
        const done = new Promise<number>((resolve) => w.once('message', resolve));
        w.postMessage(ms);
        return done;
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  async measure(ms = 600): Promise<number> {
    await this.started;
    const one = await this.run(1, ms);
    const two = await this.run(2, ms);
    return two / one;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.threads.map((w) => w.terminate()));
  }
}

async function probeThread(): Promise<void> {
  await selectBackend(flag('probe', 'wasm') as BackendRequest);
  const a = tf.randomNormal([128, 784]);
  const b = tf.randomNormal([784, 512]);
  parentPort!.postMessage('ready');
  parentPort!.on('message', (ms: number) => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < ms) {
      tf.tidy(() => tf.matMul(a, b).dataSync());
      n++;
    }
    parentPort!.postMessage(n / ((performance.now() - t0) / 1000));
  });
}

async function main(): Promise<void> {
  const backend = await selectBackend(BACKEND);
  const data = batches(4);
  const models = [0, 1, 2].map(() => ClipModel.create(ARCH, TOKENIZER, { mean: [0.286], std: [0.353] }, 1));
  const local = new LocalStepper(models[0], OPTIMIZER);
  const parallel = new WorkerStepper(models[1], OPTIMIZER, { workers: WORKERS, backend: backend.name, seed: 1 });
  const single = new WorkerStepper(models[2], OPTIMIZER, { workers: 1, backend: backend.name, seed: 1 });
  const arms: [string, StepRunner][] = [
    ['local', local],
    [`workers=${WORKERS}`, parallel],
    ['workers=1', single],
  ];
  for (const [, s] of arms) await timeSteps(s, data, 2); // warm-up: wasm compile, first allocations
  parallel.resetProfile();
  single.resetProfile();
  const rates: Record<string, number[]> = Object.fromEntries(arms.map(([n]) => [n, []]));
  const cores: Record<string, number[]> = Object.fromEntries(arms.map(([n]) => [n, []]));
  const probe = new CapacityProbe(backend.name);
  const capacity: number[] = [];
  const load0 = os.loadavg()[0];
  for (let r = 0; r < ROUNDS; r++) {
    capacity.push(await probe.measure());
    // Rotate the order so that no arm always runs first in a round.
    for (let k = 0; k < arms.length; k++) {
      const [name, s] = arms[(r + k) % arms.length];
      const { rate, cores: c } = await timeSteps(s, data, STEPS);
      rates[name].push(rate);
      cores[name].push(c);
    }
  }
  const load1 = os.loadavg()[0];
  await probe.dispose();
  const ratios = rates[`workers=${WORKERS}`].map((x, i) => x / rates.local[i]);
  const overhead = rates['workers=1'].map((x, i) => x / rates.local[i]);
  const idleRounds = ratios.filter((_, i) => capacity[i] >= 1.8);
  const profile = parallel.profile();
  const perStep = (p: PhaseTimes) => Object.fromEntries(PHASES.map((k) => [k, +(p[k] / profile.steps).toFixed(2)])) as unknown as PhaseTimes;
  const mean = zeroPhases();
  for (const w of profile.workers) for (const k of PHASES) mean[k] += w[k] / profile.workers.length;
  const result = {
    bench: 'train-parallel',
    backend: backend.name,
    model: 'mlp 784-512-512-128, text bag-of-words 256, embed 128',
    batch: BATCH,
    workers: WORKERS,
    rounds: ROUNDS,
    stepsPerRound: STEPS,
    samplesPerSecond: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, { median: +quantile(v, 0.5).toFixed(0), min: +Math.min(...v).toFixed(0), max: +Math.max(...v).toFixed(0) }])),
    /** CPU time of the whole process over wall time while each arm ran: how many cores it got. */
    coresUsed: Object.fromEntries(Object.entries(cores).map(([k, v]) => [k, +quantile(v, 0.5).toFixed(2)])),
    /** 1-minute load average before and after (the machine is shared: compare ratios, not absolute figures). */
    loadAverage: [+load0.toFixed(2), +load1.toFixed(2)],
    /** Parallel capacity per round: 2 threads' matMul throughput over 1 thread's (2.0 on two idle cores). */
    parallelCapacity: { median: +quantile(capacity, 0.5).toFixed(2), min: +Math.min(...capacity).toFixed(2), max: +Math.max(...capacity).toFixed(2) },
    /** Each round: parallel capacity just before it, and the arms' samples/s. */
    perRound: capacity.map((c, i) => ({ capacity: +c.toFixed(2), ...Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, +v[i].toFixed(0)])) })),
    /** Speed-up over the rounds the machine offered nearly two free cores (capacity >= 1.8), if any. */
    speedupWhenIdle: idleRounds.length ? { rounds: idleRounds.length, median: +quantile(idleRounds, 0.5).toFixed(3), min: +Math.min(...idleRounds).toFixed(3), max: +Math.max(...idleRounds).toFixed(3) } : null,
    speedup: { median: +quantile(ratios, 0.5).toFixed(3), min: +Math.min(...ratios).toFixed(3), max: +Math.max(...ratios).toFixed(3) },
    singleWorkerVsLocal: { median: +quantile(overhead, 0.5).toFixed(3), min: +Math.min(...overhead).toFixed(3), max: +Math.max(...overhead).toFixed(3) },
    msPerStep: {
      wall: +(profile.stepMs / profile.steps).toFixed(2),
      mainInputCopy: +(profile.inputMs / profile.steps).toFixed(2),
      workerMean: perStep(mean),
      perWorker: profile.workers.map(perStep),
    },
  };
  console.log(JSON.stringify(result));
  console.log('');
  console.log(`load average ${load0.toFixed(2)} -> ${load1.toFixed(2)} on ${os.cpus().length} cores`);
  console.log('arm          samples/s median   (min - max)   cores used');
  for (const [name, v] of Object.entries(rates)) {
    console.log(`${name.padEnd(12)} ${quantile(v, 0.5).toFixed(0).padStart(16)}   (${Math.min(...v).toFixed(0)} - ${Math.max(...v).toFixed(0)})   ${quantile(cores[name], 0.5).toFixed(2)}`);
  }
  console.log(`speed-up workers=${WORKERS} / local: median ${result.speedup.median}x (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')})`);
  console.log(`parallel capacity (2-thread / 1-thread matMul throughput): median ${result.parallelCapacity.median} (rounds: ${capacity.map((x) => x.toFixed(2)).join(', ')})`);
  const idle = result.speedupWhenIdle;
  console.log(idle ? `speed-up in the ${idle.rounds} rounds with capacity >= 1.8: median ${idle.median}x (${idle.min} - ${idle.max})` : 'no round had capacity >= 1.8: the machine was busy, the speed-up above is not that of two free cores');
  console.log('');
  console.log(`workers=${WORKERS}: ms per step (wall ${result.msPerStep.wall}, main-thread input copy ${result.msPerStep.mainInputCopy})`);
  console.log(`phase            ${profile.workers.map((_, i) => `worker ${i}`.padStart(9)).join(' ')}`);
  for (const k of PHASES) console.log(`${k.padEnd(16)} ${profile.workers.map((w) => (w[k] / profile.steps).toFixed(2).padStart(9)).join(' ')}`);
  for (const [, s] of arms) await s.dispose();
  for (const m of models) m.dispose();
}

(isMainThread ? main() : probeThread()).catch((e) => {
  console.error(e);
  process.exit(1);
});

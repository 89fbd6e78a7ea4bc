/**
 * Worker thread of `WorkerStepper`: one shard of each batch through its own
 * tfjs backend (or the kernel step), the contrastive loss from every shard's
 * published embeddings (with the kernel step, this shard's rows' and columns'
 * share of it), then the gradient sum and AdamW (wasm SIMD) over this
 * worker's part of the shared parameter vector. See shared.ts for the memory
 * and messages.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendRequest } from '../../backend/select.js';
import { imageBytes } from '../../data/types.js';
import { Tokenizer } from '../../data/tokenizer.js';
import { ClipModel } from '../../model/clip.js';
import { clipLoss } from '../../model/loss.js';
import { copyTensorInto, tensorFrom } from '../../backend/tensorIO.js';
import { adamwRangeKernel, updatePartition, type FlatOptimizerState, type HeapOptimizerState } from '../flatAdamw.js';
import { KernelHeap } from '../../backend/wasm/heap.js';
import { fmaAvailable } from '../../backend/wasm/kernels.js';
import { decayMask, flatLayout, layoutMismatch, evenSplit, type FlatLayout } from '../flatLayout.js';
import { KernelStep, useKernelStep } from '../kernelStep.js';
import {
  AbortedError,
  barrier,
  CTL_FINISHED,
  CTL_SEQUENCE,
  PROTOCOL_VERSION,
  raiseAbort,
  stateLayout,
  stateViews,
  zeroPhases,
  type BatchMemory,
  type FromWorker,
  type InitMessage,
  type PhaseTimes,
  type StepMessage,
  type ToWorker,
} from './shared.js';

/**
 * Parameters every worker's loss reads but no tower does: their gradient is
 * the same full-batch gradient in every worker, so only worker 0 reports it
 * (summing all would count it W times).
 */
const LOSS_ONLY_PARAMS = new Set(['logit_scale']);

interface BatchViews {
  readonly capacity: number;
  readonly pixels: Uint8Array;
  readonly tokens: Int32Array;
  readonly weights: Float32Array;
  readonly images: Float32Array;
  readonly texts: Float32Array;
  readonly stats: Float64Array;
}

class ShardWorker {
  private readonly control: Int32Array;
  private readonly state: FlatOptimizerState;
  private readonly heapState: HeapOptimizerState;
  private readonly grads: Float32Array[];
  private readonly ownGrads: Float32Array;
  private readonly layout: FlatLayout;
  private readonly variables: tf.Variable[];
  private readonly gradVariables: tf.Variable[];
  private readonly partition: [number, number];
  private readonly bytes: number;
  private batch: BatchViews | null = null;
  /** The wasm kernel step (kernelStep.ts), or null: tfjs ops on this worker's variables. */
  private readonly kernel: KernelStep | null;

  private constructor(
    private readonly init: InitMessage,
    private readonly model: ClipModel,
  ) {
    const { memory, workers, index } = init;
    this.layout = flatLayout(init.slots);
    const total = this.layout.total;
    this.control = new Int32Array(memory.control);
    const views = stateViews(memory.state, total, workers);
    this.state = { params: views.params, m: views.m, v: views.v, decay: decayMask(this.layout) };
    this.grads = views.grads;
    const at = stateLayout(total, workers);
    this.heapState = { heap: KernelHeap.attach(memory.state, fmaAvailable()), params: at.params, m: at.m, v: at.v, grads: at.grads, gradStride: at.gradStride, gradCount: workers };
    this.ownGrads = this.grads[index];
    const params = model.params.list;
    this.variables = params.map((p) => p.variable);
    this.gradVariables = params.filter((p) => index === 0 || !LOSS_ONLY_PARAMS.has(p.name)).map((p) => p.variable);
    this.partition = updatePartition(total, workers, index);
    this.bytes = imageBytes(init.arch.imageShape);
    this.kernel = useKernelStep(init.kernel, init.arch) ? new KernelStep(init.arch, init.normalization, this.layout) : null;
  }

  static async create(init: InitMessage): Promise<ShardWorker> {
    if (init.protocol !== PROTOCOL_VERSION) {
      throw new Error(`the compiled worker speaks protocol ${PROTOCOL_VERSION}, the stepper ${init.protocol}: dist/ is stale, run \`npm run build\``);
    }
    await selectBackend(init.backend as BackendRequest);
    const model = ClipModel.create(init.arch, Tokenizer.fromJSON(init.tokenizer), init.normalization, init.seed);
    const mine = flatLayout(model.params.list.map((p) => ({ name: p.name, shape: p.variable.shape, decay: p.decay })));
    const why = layoutMismatch(mine, flatLayout(init.slots));
    if (why) {
      model.dispose();
      throw new Error(`the worker's model does not match the main thread's (${why}); if the sources changed, run \`npm run build\``);
    }
    return new ShardWorker(init, model);
  }

  private adopt(memory: BatchMemory): void {
    this.batch = {
      capacity: memory.capacity,
      pixels: new Uint8Array(memory.pixels),
      tokens: new Int32Array(memory.tokens),
      weights: new Float32Array(memory.weights),
      images: new Float32Array(memory.images),
      texts: new Float32Array(memory.texts),
      stats: new Float64Array(memory.stats),
    };
  }

  /** Overwrite the tfjs variables with the shared parameters (they change every step). */
  private copyIn(): void {
    const { params } = this.state;
    tf.tidy(() => {
      this.layout.slots.forEach((s, i) => {
        this.variables[i].assign(tensorFrom(params.subarray(s.offset, s.offset + s.size), s.shape));
      });
    });
  }

  /**
   * The whole batch's [size, D] embeddings in batch order: this shard's own
   * rows (on the gradient tape) between the other shards' published rows
   * (constants, so gradients flow only into this worker's towers).
   */
  private assemble(own: tf.Tensor2D, published: Float32Array, lo: number, hi: number, size: number): tf.Tensor2D {
    const d = this.init.arch.embedDim;
    const parts: tf.Tensor2D[] = [];
    if (lo > 0) parts.push(tensorFrom(published.subarray(0, lo * d), [lo, d]) as tf.Tensor2D);
    parts.push(own);
    if (hi < size) parts.push(tensorFrom(published.subarray(hi * d, size * d), [size - hi, d]) as tf.Tensor2D);
    return parts.length === 1 ? own : (tf.concat(parts, 0) as tf.Tensor2D);
  }

  step(msg: StepMessage): { loss: number; phases: PhaseTimes } {
    // Pairs with the main thread's store: its input writes are visible from here on.
    if (Atomics.load(this.control, CTL_SEQUENCE) !== msg.id) throw new Error(`step ${msg.id} posted but the control block says ${Atomics.load(this.control, CTL_SEQUENCE)}`);
    if (msg.batch) this.adopt(msg.batch);
    const batch = this.batch;
    if (!batch || batch.capacity < msg.size) throw new Error(`batch of ${msg.size} but the shared batch memory holds ${batch?.capacity ?? 0}`);
    const { workers, index, arch } = this.init;
    const phases = zeroPhases();
    const starts = evenSplit(msg.size, workers);
    const lo = starts[index];
    const hi = starts[index + 1];
    const n = hi - lo;
    const d = arch.embedDim;
    let t = performance.now();
    const lap = (phase: keyof PhaseTimes) => {
      const now = performance.now();
      phases[phase] += now - t;
      t = now;
    };
    let loss = NaN;
    if (n > 0 && this.kernel) {
      // The kernels read the shared parameters directly: no tfjs variables, no copy in.
      const { params } = this.state;
      const emb = this.kernel.forward(params, batch.pixels.subarray(lo * this.bytes, hi * this.bytes), batch.tokens.subarray(lo * arch.maxTokens, hi * arch.maxTokens), n, msg.size);
      batch.images.set(emb.images, lo * d);
      batch.texts.set(emb.texts, lo * d);
      lap('forward');
      barrier(this.control, workers);
      lap('waitEmbeddings');
      const weights = msg.weighted ? batch.weights.subarray(0, msg.size) : null;
      this.kernel.lossStats(params, batch.images, batch.texts, msg.size, lo, weights, batch.stats);
      lap('lossStats');
      barrier(this.control, workers);
      lap('waitStats');
      loss = this.kernel.shardBackward(params, batch.images, batch.texts, msg.size, lo, weights, batch.stats, this.ownGrads);
      lap('backward');
    } else if (n > 0) {
      this.copyIn();
      lap('copyIn');
      const { model } = this;
      const lossTensor = tf.tidy(() => {
        const images = model.pixelsToTensor(batch.pixels.subarray(lo * this.bytes, hi * this.bytes), n);
        const tokens = model.tokensToTensor(batch.tokens.slice(lo * arch.maxTokens, hi * arch.maxTokens), n);
        const weights = msg.weighted ? tf.tensor1d(batch.weights.slice(0, msg.size)) : undefined;
        const { value, grads } = tf.variableGrads(() => {
          const img = model.encodeImages(images);
          const txt = model.encodeTexts(tokens);
          copyTensorInto(img, batch.images, lo * d);
          copyTensorInto(txt, batch.texts, lo * d);
          lap('forward');
          barrier(this.control, workers);
          lap('waitEmbeddings');
          const allImages = this.assemble(img, batch.images, lo, hi, msg.size);
          const allTexts = this.assemble(txt, batch.texts, lo, hi, msg.size);
          return clipLoss(allImages, allTexts, model.logitScale(), weights);
        }, this.gradVariables);
        lap('backward');
        this.layout.slots.forEach((s, i) => {
          const g = grads[this.variables[i].name];
          if (g) copyTensorInto(g, this.ownGrads, s.offset);
          else this.ownGrads.fill(0, s.offset, s.offset + s.size);
        });
        return value;
      });
      // every worker computed the whole batch's loss: worker 0 reports it, the others a share of 0
      loss = index === 0 ? lossTensor.dataSync()[0] : 0;
      lossTensor.dispose();
      lap('gradientsOut');
    } else {
      // No samples (batch smaller than the worker count): still a party to every barrier.
      this.ownGrads.fill(0);
      loss = 0;
      lap('forward');
      barrier(this.control, workers);
      lap('waitEmbeddings');
      if (this.kernel) {
        barrier(this.control, workers);
        lap('waitStats');
      }
    }
    barrier(this.control, workers);
    lap('waitGradients');
    adamwRangeKernel(this.heapState, this.state, this.grads, this.layout, this.partition[0], this.partition[1], this.init.optimizer, msg.lr, msg.t);
    lap('update');
    // No barrier after the update: the main thread posts the next step (whose
    // forward reads every partition) only once every worker has reported done.
    // Pairs with the main thread's load before it reads parameters or moments.
    Atomics.add(this.control, CTL_FINISHED, 1);
    return { loss, phases };
  }
}

const port = parentPort;
if (!port) throw new Error('worker.ts runs as a worker thread of WorkerStepper');
let shard: ShardWorker | null = null;
let control: Int32Array | null = null;
let index = -1;

function post(msg: FromWorker): void {
  port!.postMessage(msg);
}

port.on('message', async (msg: ToWorker) => {
  if (msg.type === 'init') {
    index = msg.index;
    control = new Int32Array(msg.memory.control);
    try {
      shard = await ShardWorker.create(msg);
      post({ type: 'ready', index });
    } catch (e) {
      post({ type: 'error', id: null, index, message: (e as Error).message ?? String(e), aborted: false });
    }
    return;
  }
  try {
    if (!shard) throw new Error('step before the worker was initialised');
    const { loss, phases } = shard.step(msg);
    post({ type: 'done', id: msg.id, index, loss, phases });
  } catch (e) {
    const aborted = e instanceof AbortedError;
    // Release the other workers from their barriers before reporting.
    if (!aborted && control) raiseAbort(control);
    post({ type: 'error', id: msg.id, index, message: (e as Error).message ?? String(e), aborted });
  }
});

/**
 * A custom training hook, run with the library API.
 *
 *   npm run build && node dist/examples/custom-hook.js
 *
 * The hook watches per-batch losses and, after each epoch, prints the mean
 * image-embedding norm of the samples it saw, and drops the 1% of samples
 * whose image embeddings lie farthest from the mean (a toy policy: the real
 * one is `backdoorFilter`). It shows what a hook can reach: the model's
 * embedding functions, the training set, the sample-weight table that the
 * next epoch's loader reads, and the metric stream.
 */
import { resolveConfig, runTraining, createReporter, type TrainHook, type HookContext } from '../src/index.js';

class FarthestSampleDropper implements TrainHook {
  readonly name = 'farthest-sample-dropper';
  private batchLosses: number[] = [];

  onBatchEnd(_ctx: HookContext, batch: { loss: number }): void {
    this.batchLosses.push(batch.loss);
  }

  async onEpochEnd(ctx: HookContext): Promise<void> {
    const d = ctx.model.embedDim;
    // Only samples still in training compete; dropped ones stay dropped.
    const active = ctx.weights.activeIndices();
    const emb = await ctx.model.embedImages(ctx.trainSet, active);
    const n = active.length;
    const mean = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += emb[i * d + j] / n;
    const dist = Array.from({ length: n }, (_, i) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += (emb[i * d + j] - mean[j]) ** 2;
      return { i: active[i], s };
    });
    dist.sort((a, b) => b.s - a.s);
    const drop = dist.slice(0, Math.floor(n * 0.01)).map((x) => x.i);
    ctx.weights.drop(drop);
    const batchMean = this.batchLosses.reduce((a, b) => a + b, 0) / Math.max(1, this.batchLosses.length);
    this.batchLosses = [];
    ctx.recorder.log({ 'example/dropped_total': ctx.weights.size - ctx.weights.activeCount(), 'example/batch_loss_mean': batchMean }, ctx.epoch);
    ctx.log(`[${this.name}] epoch ${ctx.epoch}: dropped ${drop.length} more; ${ctx.weights.activeCount()} samples remain`);
  }
}

const config = resolveConfig({
  out: 'runs/custom-hook-example',
  backend: 'auto',
  data: { kind: 'synthetic', size: 2000, testSize: 500 },
  model: { hidden: [128], embedDim: 32, textWidth: 64 },
  train: { epochs: 3, batchSize: 128 },
  tracking: { enabled: false },
});

const result = await runTraining(config, { hooks: [new FarthestSampleDropper()], reporter: createReporter({ quiet: false }) });
console.log(JSON.stringify({ status: result.status, cleanAccuracy: result.summary.eval.cleanAccuracy, epochs: result.summary.epochs.length }));

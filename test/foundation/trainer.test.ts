import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { HookList, type TrainHook } from '../../src/train/hooks.js';
import { runTraining } from '../../src/train/run.js';
import { HookError } from '../../src/util/errors.js';
import { tempDir, tinyConfig } from '../helpers/tiny.js';

describe('hooks', () => {
  it('run in registration order, class instances and plain objects alike', async () => {
    const calls: string[] = [];
    class Recorder implements TrainHook {
      async onEpochEnd() {
        await new Promise((r) => setTimeout(r, 5));
        calls.push('class');
      }
    }
    const list = new HookList([new Recorder(), { name: 'plain', onEpochEnd: () => void calls.push('plain') }]);
    await list.run('onEpochEnd', {} as never, {} as never);
    expect(calls).toEqual(['class', 'plain']);
  });

  it('attribute an error to the hook and method that threw', async () => {
    class Broken implements TrainHook {
      onTrainBegin() {
        throw new Error('boom');
      }
    }
    await expect(new HookList([{ name: 'ok' }, new Broken()]).run('onTrainBegin', {} as never)).rejects.toThrow('hook "Broken" failed in onTrainBegin: boom');
    await expect(new HookList([{ onEpochBegin: () => Promise.reject(new Error('x')) }]).run('onEpochBegin', {} as never)).rejects.toBeInstanceOf(HookError);
  });
});

describe('trainer', () => {
  it('calls every hook at the right time and lets a hook drop samples from the next epochs', async () => {
    const events: string[] = [];
    const seen = new Map<number, Set<number>>();
    const dropped = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const hook: TrainHook = {
      name: 'probe',
      onTrainBegin: (ctx) => void events.push(`begin:${ctx.epoch}`),
      onEpochBegin: (ctx) => void events.push(`epoch:${ctx.epoch}`),
      onBatchEnd: (ctx, b) => {
        if (!seen.has(ctx.epoch)) seen.set(ctx.epoch, new Set());
        for (const i of b.indices) seen.get(ctx.epoch)!.add(i);
      },
      onEpochEnd: (ctx, record) => {
        events.push(`end:${ctx.epoch}:${record.activeSamples}`);
        if (ctx.epoch === 1) ctx.weights.drop(dropped);
      },
      onTrainEnd: (_ctx, end) => void events.push(`done:${end.status}`),
    };
    const out = tempDir();
    const config = tinyConfig({ out, train: { epochs: 3 } });
    const result = await runTraining(config, { hooks: [hook] });
    expect(events).toEqual(['begin:0', 'epoch:1', 'end:1:256', 'epoch:2', 'end:2:246', 'epoch:3', 'end:3:246', 'done:finished']);
    expect(seen.get(1)!.size).toBe(256);
    for (const e of [2, 3]) {
      expect(seen.get(e)!.size).toBe(246);
      for (const i of dropped) expect(seen.get(e)!.has(i)).toBe(false);
    }
    expect(result.summary.epochs.map((e) => e.activeSamples)).toEqual([256, 246, 246]);
    expect(tf.memory().numTensors).toBeLessThan(50);
  });

  it('sizes the restarted learning-rate schedule for the samples kept at a rewind, so it anneals to its end', async () => {
    // 256 samples, batch 32, 2 epochs; after epoch 1 the hook keeps 64 and rewinds: the new schedule is
    // 2 steps x 2 epochs = 4 steps (warm-up min(2, floor(4 / 10)) = 0), its last step at 3 of 4.
    const hook: TrainHook = {
      name: 'keep-64',
      onEpochEnd: (ctx) => {
        if (ctx.epoch !== 1) return;
        ctx.weights.drop(Array.from({ length: 192 }, (_, i) => i + 64));
        ctx.requestRewind('test');
      },
    };
    const out = tempDir();
    const config = tinyConfig({ out, train: { epochs: 2 } });
    await runTraining(config, { hooks: [hook] });
    const ckpt = await loadCheckpoint(out);
    ckpt.model.dispose();
    const rates = ckpt.state.history.filter((p) => p.key === 'train/learning_rate');
    const peak = config.train.lr;
    expect(rates.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(rates[2].value).toBeCloseTo(0.5 * peak * (1 + Math.cos((Math.PI * 3) / 4)), 12);
    expect(ckpt.state.scheduleSamples).toBe(64);
  });

  it('stretches the schedule when samples come back after it started, so the remaining epochs still anneal to its end', async () => {
    // 256 samples, batch 32, 3 epochs. After epoch 1 the hook keeps 64 and rewinds (schedule 2 x 3 = 6 steps);
    // after epoch 2 (steps 0-1) all 256 come back: epochs 3 and 4 take 8 steps each, so the schedule must
    // cover 2 + 16 = 18 steps — 192 samples' worth — and its last step (17) is short of the end (warm-up
    // min(2, floor(18 / 10)) = 1). Unstretched, steps 6-17 would train at a rate of 0.
    const hook: TrainHook = {
      name: 'drop-then-readmit',
      onEpochEnd: (ctx) => {
        if (ctx.epoch === 1) {
          ctx.weights.drop(Array.from({ length: 192 }, (_, i) => i + 64));
          ctx.requestRewind('test');
        }
        if (ctx.epoch === 2) for (let i = 64; i < 256; i++) ctx.weights.set(i, 1);
      },
    };
    const out = tempDir();
    const config = tinyConfig({ out, train: { epochs: 3 } });
    const result = await runTraining(config, { hooks: [hook] });
    expect(result.summary.epochs.map((e) => e.activeSamples)).toEqual([256, 64, 256, 256]);
    const ckpt = await loadCheckpoint(out);
    ckpt.model.dispose();
    const rates = ckpt.state.history.filter((p) => p.key === 'train/learning_rate');
    const peak = config.train.lr;
    expect(ckpt.state.scheduleSamples).toBe(192);
    expect(rates.at(-1)!.value).toBeCloseTo(0.5 * peak * (1 + Math.cos((Math.PI * 16) / 17)), 12);
    expect(rates.at(-1)!.value).toBeGreaterThan(0);
  });

  it('resumes from a checkpoint to exactly the weights and summary of an uninterrupted run', async () => {
    const straightDir = tempDir();
    await runTraining(tinyConfig({ out: straightDir, train: { epochs: 3 } }));
    const interruptedDir = tempDir();
    const abort = new AbortController();
    const stopper: TrainHook = { name: 'stopper', onEpochEnd: (ctx) => void (ctx.epoch === 1 && abort.abort()) };
    const first = await runTraining(tinyConfig({ out: interruptedDir, train: { epochs: 3 } }), { hooks: [stopper], signal: abort.signal });
    expect(first.status).toBe('killed');
    expect(first.summary.epochs).toHaveLength(1);
    const resumed = await runTraining(tinyConfig({ out: interruptedDir, train: { epochs: 3 } }), { resume: true });
    expect(resumed.status).toBe('finished');
    const a = await loadCheckpoint(straightDir);
    const b = await loadCheckpoint(interruptedDir);
    for (const p of a.model.params.list) {
      expect(Array.from(b.model.params.get(p.name).dataSync())).toEqual(Array.from(p.variable.dataSync()));
    }
    const strip = (s: typeof resumed.summary) => s.epochs.map(({ loss, temperature, activeSamples, cleanAccuracy }) => ({ loss, temperature, activeSamples, cleanAccuracy }));
    expect(strip(resumed.summary)).toEqual(strip(a.state.summary));
    expect(resumed.summary.resumedFrom).toEqual([1]);
    a.model.dispose();
    b.model.dispose();
  });
});

import { describe, expect, it } from 'vitest';
import { runBounded } from '../../src/neighbors/parallel/pool.js';

const tick = () => new Promise<void>((r) => setTimeout(r, 1));

describe('runBounded', () => {
  it('never has more than `limit` tasks unsettled, and runs every task', async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    function* tasks() {
      for (let i = 0; i < 20; i++) {
        yield async () => {
          running++;
          peak = Math.max(peak, running);
          await tick();
          running--;
          done.push(i);
        };
      }
    }
    await runBounded(3, tasks());
    expect(peak).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
  });

  it('stops producing after a failure and throws it once the started tasks settle', async () => {
    let produced = 0;
    let settled = 0;
    async function* tasks() {
      for (let i = 0; i < 100; i++) {
        produced++;
        yield async () => {
          await tick();
          settled++;
          if (i === 2) throw new Error('chunk 2 failed');
        };
      }
    }
    await expect(runBounded(2, tasks())).rejects.toThrow('chunk 2 failed');
    expect(produced).toBeLessThan(10);
    expect(settled).toBe(produced);
  });
});

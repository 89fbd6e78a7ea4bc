import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tiny.js';

describe('examples', () => {
  it('custom-hook.ts runs and its hook drops samples', () => {
    const script = resolve('dist/examples/custom-hook.js');
    expect(existsSync(script)).toBe(true);
    const r = spawnSync(process.execPath, [script], { cwd: tempDir(), encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/\[farthest-sample-dropper\] epoch 3: dropped 19 more; 1942 samples remain/);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(last.status).toBe('finished');
    expect(last.epochs).toBe(3);
  });
});

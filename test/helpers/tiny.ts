import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/load.js';
import type { Config, RawConfig } from '../../src/config/schema.js';

export function tempDir(prefix = 'cbf-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A config small enough for a test: a few hundred synthetic samples, a tiny model. */
export function tinyConfig(overrides: RawConfig = {}): Config {
  const base: RawConfig = {
    seed: 1,
    backend: 'wasm',
    quiet: true,
    data: { kind: 'synthetic', size: 256, testSize: 96, imageSize: 8 },
    model: { hidden: [32], embedDim: 16, textWidth: 16, maxTokens: 8 },
    train: { epochs: 2, batchSize: 32, warmupSteps: 2, embedBatchSize: 64 },
    tracking: { enabled: false },
  };
  const merged = { ...base, ...overrides } as Record<string, unknown>;
  for (const key of ['data', 'model', 'train', 'tracking', 'filter'] as const) {
    const b = (base as Record<string, unknown>)[key];
    const o = (overrides as Record<string, unknown>)[key];
    if (b && o) merged[key] = { ...(b as object), ...(o as object) };
  }
  return resolveConfig(merged as RawConfig);
}

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const CLI = resolve('dist/src/cli/main.js');

/** The CLI tests run the compiled CLI: `npm test` builds first. */
export function requireBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does it) before the CLI tests`);
}

export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeout ?? 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function startCli(args: string[], opts: { cwd?: string } = {}) {
  return spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

export const TINY_ARGS = [
  '--backend', 'wasm',
  '--data.size', '256', '--data.testSize', '96', '--data.imageSize', '8',
  '--model.hidden', '32', '--model.embedDim', '16', '--model.textWidth', '16', '--model.maxTokens', '8',
  '--train.batchSize', '32', '--train.warmupSteps', '2',
  '--tracking.enabled', 'false',
];

import * as tf from '@tensorflow/tfjs';
import { UserError } from '../util/errors.js';
import { installKernels } from './kernels.js';

export type BackendRequest = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  readonly name: BackendName;
  /** Which package provided it, e.g. `@tensorflow/tfjs-node-gpu`, for logs and summary.json. */
  readonly provider: string;
}

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

async function tryNative(): Promise<{ provider: string } | { errors: string[] }> {
  const errors: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow') || tf.findBackendFactory('tensorflow')) return { provider: pkg };
      errors.push(`${pkg} loaded but registered no "tensorflow" backend`);
    } catch (e) {
      errors.push(`${pkg}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return { errors };
}

async function activate(name: BackendName): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

let current: BackendInfo | null = null;

/**
 * Choose and initialise the tfjs backend. `auto` prefers the native TensorFlow
 * binding (fast, multi-threaded, GPU when present), then WebAssembly (SIMD,
 * single-threaded in Node), then the pure-JS cpu backend.
 */
export async function selectBackend(request: BackendRequest): Promise<BackendInfo> {
  if (current && (request === 'auto' || request === current.name)) return current;
  let info: BackendInfo | null = null;
  if (request === 'tensorflow' || request === 'auto') {
    const native = await tryNative();
    if ('provider' in native && (await activate('tensorflow'))) info = { name: 'tensorflow', provider: native.provider };
    else if (request === 'tensorflow') {
      const why = 'errors' in native ? native.errors.join('; ') : 'the backend did not initialise';
      throw new UserError(
        `backend "tensorflow" is not available (${why})`,
        'BACKEND_UNAVAILABLE',
        'install the native binding with `npm install @tensorflow/tfjs-node` (CPU) or `npm install @tensorflow/tfjs-node-gpu` (CUDA); it downloads libtensorflow, so it needs internet access at install time. Or use --backend wasm.',
      );
    }
  }
  if (!info && (request === 'wasm' || request === 'auto')) {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
    } catch (e) {
      if (request === 'wasm') {
        throw new UserError(`backend "wasm" is not available: ${(e as Error).message}`, 'BACKEND_UNAVAILABLE', 'reinstall dependencies with `npm install` (the package @tensorflow/tfjs-backend-wasm is required)');
      }
    }
    if (await activate('wasm')) info = { name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm' };
    else if (request === 'wasm') {
      throw new UserError('backend "wasm" failed to initialise', 'BACKEND_UNAVAILABLE', 'reinstall dependencies with `npm install`, or use --backend cpu');
    }
  }
  if (!info) {
    if (!(await activate('cpu'))) throw new UserError('no tfjs backend could be initialised', 'BACKEND_UNAVAILABLE', 'reinstall dependencies with `npm install`');
    info = { name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu' };
  }
  installKernels(info.name);
  current = info;
  return info;
}

export function currentBackend(): BackendInfo | null {
  return current;
}

import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { Task, TaskReply } from './protocol.js';

/**
 * Worker threads for the neighbour search and scoring (./worker.ts). In
 * Node, wasm runs single-threaded per thread, so using every core needs one
 * thread per core, each with its own wasm instance (on one shared memory
 * where the threads cooperate on one search).
 *
 * Lifecycle: a pool is created on first use and kept for the next calls
 * (filter rounds score again every epoch; starting a thread costs ~30 ms).
 * Its threads are unref'd whenever no task is pending, so an idle pool never
 * keeps the process alive; `closeKnnPool` ends them explicitly. A failing
 * task rejects its promise; a thread that crashes or exits rejects every task
 * pending on it and retires the pool (the next call starts a fresh one):
 * a caller never waits on a thread that is gone.
 */

/** Default thread count: the cores this process may use. */
export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Validated thread count (undefined = defaultThreads()). */
export function resolveThreads(threads: number | undefined): number {
  const t = threads ?? defaultThreads();
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  return t;
}

/**
 * The compiled worker script. From dist/ it sits next to this module; when
 * this module runs from the TypeScript sources (vitest), the worker still
 * has to be plain JS, so the compiled copy under dist/ is used.
 */
export function knnWorkerUrl(): URL {
  const here = import.meta.url;
  if (here.endsWith('.js')) return new URL('./worker.js', here);
  const compiled = new URL('../../../dist/src/neighbors/parallel/worker.js', here);
  if (!existsSync(fileURLToPath(compiled))) {
    throw new Error(`the neighbour search runs its threads from the compiled ${fileURLToPath(compiled)}, which does not exist: run \`npm run build\` first`);
  }
  return compiled;
}

/** Messages carry an id; replies name it and either a result or an error. */
type Message = { type: string };
type Reply = TaskReply;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  worker: number;
}

/**
 * Threads running one worker script, tasks matched to replies by id. At
 * most two tasks are posted per thread (one running, one queued in its
 * port); more wait here, so no thread idles while the caller prepares work
 * and no thread hoards it.
 */
export class ThreadPool<T extends Message = Message> {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly busy: number[];
  private readonly queue: { message: T; transfer: TransferListItem[]; pending: Omit<Pending, 'worker'> }[] = [];
  private nextId = 1;
  private broken: Error | null = null;
  private closed = false;

  constructor(
    readonly size: number,
    url: URL,
    private readonly label = 'neighbour worker',
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a thread pool needs a positive number of threads, got ${size}`);
    this.busy = new Array<number>(size).fill(0);
    for (let index = 0; index < size; index++) {
      // Threads inherit the process's Node flags; --input-type (node -e scripts) is refused for a file entry.
      const worker = new Worker(url, { execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')) });
      worker.unref();
      const label = this.label;
      worker.on('message', (reply: Reply) => this.onReply(index, reply));
      worker.on('error', (e: Error) => this.fail(new Error(`${label} ${index} crashed: ${e.message}`)));
      worker.on('messageerror', (e: Error) => this.fail(new Error(`${label} ${index} sent an unreadable message: ${e.message}`)));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`${label} ${index} exited unexpectedly (exit code ${code})`));
      });
      this.workers.push(worker);
    }
  }

  /** Whether the pool can take tasks (not closed, no thread lost). */
  get usable(): boolean {
    return !this.closed && !this.broken;
  }

  /** Run a task on any thread (the least busy; queued while all are busy with more than one task). */
  run<R>(message: T, transfer: TransferListItem[] = []): Promise<R> {
    let best = 0;
    for (let w = 1; w < this.size; w++) if (this.busy[w] < this.busy[best]) best = w;
    if (this.busy[best] >= 2) {
      return new Promise<R>((resolve, reject) => {
        this.queue.push({ message, transfer, pending: { resolve: resolve as (v: unknown) => void, reject } });
      });
    }
    return this.runOn<R>(best, message, transfer);
  }

  /** Run a task on thread `index` (for tasks that use state a previous task left there). */
  runOn<R>(index: number, message: T, transfer: TransferListItem[] = []): Promise<R> {
    return new Promise<R>((resolve, reject) => this.post(index, message, transfer, { resolve: resolve as (v: unknown) => void, reject }));
  }

  private post(index: number, message: T, transfer: TransferListItem[], pending: Omit<Pending, 'worker'>): void {
    if (this.broken) return pending.reject(this.broken);
    if (this.closed) return pending.reject(new Error(`the ${this.label} pool was closed`));
    const id = this.nextId++;
    this.pending.set(id, { ...pending, worker: index });
    if (this.busy[index]++ === 0) this.workers[index].ref();
    try {
      this.workers[index].postMessage({ ...message, id }, transfer);
    } catch (e) {
      this.settle(id);
      pending.reject(e as Error);
    }
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (--this.busy[p.worker] === 0) this.workers[p.worker].unref();
    return p;
  }

  private onReply(index: number, reply: Reply): void {
    const p = this.settle(reply.id);
    if (!p) return;
    if (reply.ok) p.resolve(reply.result);
    else {
      const error = new Error(`${this.label} ${index}: ${reply.message}`);
      if (reply.stack) error.stack = `${error.message}\n--- in the worker ---\n${reply.stack}`;
      p.reject(error);
    }
    const next = this.queue.shift();
    if (next) this.post(index, next.message, next.transfer, next.pending);
  }

  /** A thread is gone: reject everything pending or queued and retire the pool. */
  private fail(error: Error): void {
    if (this.broken || this.closed) return;
    this.broken = error;
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
    for (const q of this.queue.splice(0)) q.pending.reject(error);
    void this.terminate();
  }

  private async terminate(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate().catch(() => 0)));
  }

  /** End every thread; pending tasks reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    const error = new Error(`the ${this.label} pool was closed`);
    this.closed = true;
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
    for (const q of this.queue.splice(0)) q.pending.reject(error);
    await Promise.all(this.workers.map((w) => w.terminate().catch(() => 0)));
  }
}

/** The pool of the neighbour search and scoring threads (./worker.ts). */
export class KnnPool extends ThreadPool<Task> {
  constructor(size: number) {
    super(size, knnWorkerUrl(), 'neighbour worker');
  }
}

let shared: KnnPool | null = null;

/** The process-wide pool with exactly `threads` threads (replacing one of another size, or a broken one). */
export function knnPool(threads: number): KnnPool {
  if (shared && shared.usable && shared.size === threads) return shared;
  if (shared) void shared.close();
  shared = new KnnPool(threads);
  return shared;
}

/** End the shared pool's threads (they are unref'd when idle, so this is only needed for a prompt, explicit teardown). */
export async function closeKnnPool(): Promise<void> {
  const p = shared;
  shared = null;
  if (p) await p.close();
}

/**
 * Starts the tasks one after another with at most `limit` unsettled, so
 * that only `limit` tasks' inputs exist at once (a generator prepares each
 * input when its turn comes). The first failure stops starting new tasks and
 * is thrown once the started ones have settled.
 */
export async function runBounded(limit: number, tasks: Iterable<() => Promise<void>> | AsyncIterable<() => Promise<void>>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const state: { failure?: { error: unknown } } = {};
  for await (const start of tasks) {
    const task: Promise<void> = start()
      .catch((error: unknown) => {
        state.failure ??= { error };
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
    while (inFlight.size >= limit) await Promise.race(inFlight);
    if (state.failure) break;
  }
  await Promise.all(inFlight);
  if (state.failure) throw state.failure.error;
}

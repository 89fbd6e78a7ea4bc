import { existsSync } from 'node:fs';
import { asTrackingError, TrackingError } from './errors.js';
import type { OpenedRun, TrackingSink } from './sink.js';
import type { NewRecord, SpoolRecord, SpoolWriter } from './spool.js';
import { MLFLOW_LIMITS, type BatchPayload, type RunRef, type WireMetric } from './types.js';

/**
 * The ordered record queue between the run and a tracking sink.
 *
 * Enqueueing is synchronous and cheap (one spool line at most), so a training
 * step never waits for the network. A single pump delivers records strictly
 * in order: consecutive metric records are merged into one `log-batch` within
 * MLflow's limits. On an outage (retryable failure) the pump keeps the head
 * record, spools everything pending and retries with capped exponential
 * backoff and jitter; a record MLflow rejects (permanent failure) is reported
 * once per error code and dropped (a rejected merged batch is first split, so
 * only the culprit entity is lost); a fatal failure stops the pump and keeps
 * everything in the spool for `mlflow-sync`.
 */

export interface RetryOptions {
  /** First backoff delay (default 500 ms). */
  baseMs?: number;
  /** Largest backoff delay, also the cap on Retry-After (default 30 s). */
  maxMs?: number;
}

export interface DeliveryOptions {
  sink: TrackingSink;
  /** Where pending records are kept during an outage; null for the file store (local writes do not have outages). */
  spool: SpoolWriter | null;
  /** The run this output directory logged to before, if any (resume). */
  previous: RunRef | null;
  /** Called when the run is created or reopened (persist `mlflow-run.json`). */
  onOpened?: (run: OpenedRun) => void;
  /** Receives complete, already redacted-safe messages (without prefix). */
  log: (message: string) => void;
  retry?: RetryOptions;
  /** For tests: the jitter source (default Math.random). */
  random?: () => number;
  /** Printed in the outage message: how the pending records can be replayed. */
  spoolHint?: string;
}

interface Entry {
  record: SpoolRecord;
  /** Already written to the spool file. */
  spooled: boolean;
  /** A request carrying it may have been applied: check the server before resending metrics. */
  unsure: boolean;
  /** Set after MLflow rejected the whole record: send entity by entity; value = entities done. */
  entityProgress?: number;
}

export interface DeliveryStats {
  delivered: number;
  dropped: number;
  pending: number;
}

const isMetricsOnly = (r: SpoolRecord): boolean => r.op === 'batch' && r.batch.params.length === 0 && r.batch.tags.length === 0;
const entityCount = (b: BatchPayload): number => b.metrics.length + b.params.length + b.tags.length;

export class Delivery {
  private readonly queue: Entry[] = [];
  private nextSeq = 1;
  private run: OpenedRun | null = null;
  private previous: RunRef | null;
  private running = false;
  private halted = false;
  private fatalError: TrackingError | null = null;
  private failures = 0;
  private outageSince: number | null = null;
  /** After a merged batch was rejected: deliver records singly up to this seq. */
  private splitUntil = 0;
  private artifactsDisabled = false;
  private readonly reports = new Map<string, number>();
  private readonly changeWaiters = new Set<() => void>();
  private backoffWake: (() => void) | null = null;
  private draining = false;
  private inflight: AbortController | null = null;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;
  readonly stats = { delivered: 0, dropped: 0 };

  constructor(private readonly options: DeliveryOptions) {
    this.previous = options.previous;
    // Records loaded from a spool may target the run created by an earlier process.
    if (options.previous && options.previous.uri === options.sink.uri) this.run = { ...options.previous, resumed: true, artifactUri: '' };
    this.baseMs = options.retry?.baseMs ?? 500;
    this.maxMs = options.retry?.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  get pending(): number {
    return this.queue.length;
  }

  get isHalted(): boolean {
    return this.halted;
  }

  get fatal(): TrackingError | null {
    return this.fatalError;
  }

  get inOutage(): boolean {
    return this.outageSince !== null;
  }

  get openedRun(): OpenedRun | null {
    return this.run;
  }

  /** Queue records left by an earlier process (already in the spool file), ahead of anything new. */
  load(records: readonly SpoolRecord[], unsure: ReadonlySet<number>, maxSeq: number): void {
    for (const record of records) this.queue.push({ record, spooled: true, unsure: unsure.has(record.seq) });
    this.nextSeq = Math.max(this.nextSeq, maxSeq + 1);
    this.kick();
  }

  /** Add a record at the end of the queue; returns its sequence number. Never waits for the network. */
  enqueue(record: NewRecord): number {
    const seq = this.nextSeq++;
    const full = { ...record, seq } as SpoolRecord;
    const entry: Entry = { record: full, spooled: false, unsure: false };
    if (this.options.spool?.isOpen) this.spoolEntry(entry);
    this.queue.push(entry);
    this.kick();
    return seq;
  }

  /** Resolve when record `seq` is delivered or dropped, the pump stops, an outage begins, or `timeoutMs` passes. */
  async settle(seq: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.halted && !this.inOutage && this.queue.some((e) => e.record.seq === seq)) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await this.changed(left);
    }
  }

  /**
   * Deliver everything pending, retrying right away and then with backoff
   * within `timeoutMs`. Resolves to true when the queue is empty.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    // Start over from the short delays: the end of a run is the time to try hard.
    this.failures = 0;
    this.draining = true;
    this.backoffWake?.();
    this.kick();
    try {
      while (this.queue.length && !this.halted) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        await this.changed(left);
      }
    } finally {
      this.draining = false;
    }
    return this.queue.length === 0;
  }

  /** Stop the pump: cancel the request in flight (its records stay pending) and wait until the pump has let go. */
  async stop(): Promise<void> {
    this.halted = true;
    this.inflight?.abort();
    this.backoffWake?.();
    while (this.running) await this.changed(1000);
  }

  /**
   * Mark every pending record from `fromSeq` on as abandoned (spooled ones get
   * a dropped ack) and forget them: used when the run could not even start.
   */
  abandon(fromSeq: number): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const e = this.queue[i];
      if (e.record.seq < fromSeq) continue;
      if (e.spooled) this.options.spool?.ack(e.record.seq, 'ABANDONED');
      this.queue.splice(i, 1);
    }
  }

  /** Write every not yet spooled pending record to the spool, in order (at an outage, a fatal stop or the end). */
  spoolPending(): void {
    if (!this.options.spool) return;
    for (const e of this.queue) if (!e.spooled) this.spoolEntry(e);
  }

  /** One line per error code that was reported more than once, for the end of the run. */
  repeatedReports(): string[] {
    const lines: string[] = [];
    for (const [code, n] of this.reports) if (n > 1) lines.push(`${n - 1} more record(s) were rejected with ${code}`);
    return lines;
  }

  private spoolEntry(e: Entry): void {
    const spool = this.options.spool!;
    spool.append(e.record);
    if (e.unsure) spool.unsure(e.record.seq);
    e.spooled = true;
  }

  private notify(): void {
    for (const w of [...this.changeWaiters]) w();
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.changeWaiters.delete(done);
        resolve();
      };
      // Kept referenced: whoever awaits this (settle, drain, stop) needs the process to stay alive.
      const timer = setTimeout(done, Math.max(1, timeoutMs));
      this.changeWaiters.add(done);
    });
  }

  private kick(): void {
    if (this.running || this.halted || !this.queue.length) return;
    this.running = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length && !this.halted) {
        const group = this.takeGroup();
        const controller = new AbortController();
        this.inflight = controller;
        try {
          await this.deliver(group, controller.signal);
          this.recovered();
          this.complete(group);
        } catch (e) {
          const err = asTrackingError(e);
          if (err.kind === 'retryable') {
            this.markUnsure(group, err);
            // Cancelled by stop(): the records simply stay pending.
            if (this.halted) break;
            this.onRetryable(err);
            await this.backoff(err);
          } else if (err.kind === 'fatal' || group[0].record.op === 'open') {
            this.halt(err, group[0].record);
          } else {
            this.recovered();
            this.onPermanent(group, err);
          }
        } finally {
          this.inflight = null;
        }
        this.notify();
      }
    } catch (bug) {
      // A bug in the queue itself must not take training down; keep what is pending.
      this.halt(asTrackingError(bug), null);
    } finally {
      // Set synchronously after the last queue check, so an enqueue in the same tick restarts the pump.
      this.running = false;
      this.notify();
    }
  }

  /** The next records to send together: consecutive metric-only batches within MLflow's limits, else the head alone. */
  private takeGroup(): Entry[] {
    const head = this.queue[0];
    const alone = (e: Entry): boolean =>
      !isMetricsOnly(e.record) || e.unsure || e.entityProgress !== undefined || e.record.seq <= this.splitUntil;
    if (alone(head)) return [head];
    const group = [head];
    let metrics = (head.record as Extract<SpoolRecord, { op: 'batch' }>).batch.metrics.length;
    for (let i = 1; i < this.queue.length; i++) {
      const e = this.queue[i];
      if (alone(e)) break;
      const n = (e.record as Extract<SpoolRecord, { op: 'batch' }>).batch.metrics.length;
      if (metrics + n > MLFLOW_LIMITS.metricsPerBatch) break;
      metrics += n;
      group.push(e);
    }
    return group;
  }

  private async deliver(group: Entry[], signal: AbortSignal): Promise<void> {
    const head = group[0].record;
    const sink = this.options.sink;
    if (head.op === 'open') {
      const opened = await sink.openRun(head.request, this.run ?? this.previous, (m) => this.options.log(m), signal);
      this.run = opened;
      this.previous = opened;
      this.options.onOpened?.(opened);
      return;
    }
    const run = this.run;
    if (!run) {
      throw new TrackingError('no MLflow run to log to: the record that creates it is missing (mlflow-run.json absent)', 'fatal', { errorCode: 'NO_RUN' });
    }
    if (head.op === 'end') return sink.endRun(run, head.status, head.endTime, signal);
    if (head.op === 'artifact') {
      if (this.artifactsDisabled) throw new TrackingError('artifact uploads are off for this run', 'permanent', { errorCode: 'ARTIFACTS_DISABLED' });
      if (!existsSync(head.path)) {
        throw new TrackingError(`artifact file ${head.path} no longer exists`, 'permanent', { errorCode: 'ARTIFACT_MISSING' });
      }
      return sink.uploadArtifact(run, head.path, head.artifactPath, signal);
    }
    const entry = group[0];
    if (entry.entityProgress !== undefined) return this.deliverEntities(entry, run, signal);
    let batch: BatchPayload = {
      metrics: group.flatMap((e) => (e.record as Extract<SpoolRecord, { op: 'batch' }>).batch.metrics),
      params: group.flatMap((e) => (e.record as Extract<SpoolRecord, { op: 'batch' }>).batch.params),
      tags: group.flatMap((e) => (e.record as Extract<SpoolRecord, { op: 'batch' }>).batch.tags),
    };
    if (entry.unsure && batch.metrics.length && sink.metricHistory) {
      batch = { ...batch, metrics: await this.notYetLogged(run, batch.metrics, signal) };
      if (!entityCount(batch)) return;
    }
    return sink.logBatch(run, batch, signal);
  }

  /**
   * After a request that may have been applied (timeout, reset, 5xx), keep
   * only the points the server does not have yet, so a retry does not log a
   * value twice. Params and tags need no check: re-logging them is a no-op.
   */
  private async notYetLogged(run: OpenedRun, metrics: WireMetric[], signal: AbortSignal): Promise<WireMetric[]> {
    const have = new Map<string, number>();
    const id = (m: WireMetric): string => `${m.key}\u0000${m.timestamp}\u0000${m.step}\u0000${String(m.value)}`;
    for (const key of new Set(metrics.map((m) => m.key))) {
      for (const m of await this.options.sink.metricHistory!(run, key, signal)) have.set(id(m), (have.get(id(m)) ?? 0) + 1);
    }
    return metrics.filter((m) => {
      const n = have.get(id(m)) ?? 0;
      if (n > 0) {
        have.set(id(m), n - 1);
        return false;
      }
      return true;
    });
  }

  /** A rejected record, one entity per call: only the entities MLflow refuses are lost. */
  private async deliverEntities(entry: Entry, run: OpenedRun, signal: AbortSignal): Promise<void> {
    const batch = (entry.record as Extract<SpoolRecord, { op: 'batch' }>).batch;
    const items: BatchPayload[] = [
      ...batch.metrics.map((m) => ({ metrics: [m], params: [], tags: [] })),
      ...batch.params.map((p) => ({ metrics: [], params: [p], tags: [] })),
      ...batch.tags.map((t) => ({ metrics: [], params: [], tags: [t] })),
    ];
    for (let i = entry.entityProgress ?? 0; i < items.length; i++) {
      try {
        await this.options.sink.logBatch(run, items[i], signal);
      } catch (e) {
        const err = asTrackingError(e);
        if (err.kind !== 'permanent') throw err;
        this.report(err, describeItem(items[i]));
        this.stats.dropped++;
      }
      entry.entityProgress = i + 1;
    }
  }

  private complete(group: Entry[], dropped?: string): void {
    for (const e of group) {
      if (e.spooled) this.options.spool?.ack(e.record.seq, dropped);
      if (dropped) this.stats.dropped++;
      else this.stats.delivered++;
    }
    this.queue.splice(0, group.length);
    if (this.splitUntil && (this.queue[0]?.record.seq ?? Infinity) > this.splitUntil) this.splitUntil = 0;
  }

  private recovered(): void {
    this.failures = 0;
    if (this.outageSince === null) return;
    const seconds = Math.round((Date.now() - this.outageSince) / 1000);
    this.outageSince = null;
    this.options.log(`${this.options.sink.uri} answers again after ${seconds} s; delivering the ${this.queue.length} record(s) held back`);
  }

  private markUnsure(group: Entry[], err: TrackingError): void {
    if (!err.details.ambiguous) return;
    for (const e of group) {
      if (e.record.op !== 'batch' || !e.record.batch.metrics.length || e.unsure) continue;
      e.unsure = true;
      if (e.spooled) this.options.spool?.unsure(e.record.seq);
    }
  }

  private onRetryable(err: TrackingError): void {
    this.failures++;
    this.spoolPending();
    if (this.outageSince === null) {
      this.outageSince = Date.now();
      const where = this.options.spool ? `; records are kept in ${this.options.spool.path}` : '';
      const how = this.draining ? 'retrying until the final wait ends' : 'retrying with backoff while training goes on';
      this.options.log(`cannot deliver to ${this.options.sink.uri}: ${err.message}; ${how}${where}`);
    }
    // settle() stops waiting at the start of an outage, not after the first backoff.
    this.notify();
  }

  private async backoff(err: TrackingError): Promise<void> {
    const exp = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(30, this.failures - 1));
    // Jitter in [exp/2, exp): runs that lost the same server do not retry in lockstep.
    let delay = exp / 2 + (this.random() * exp) / 2;
    if (err.details.retryAfterSeconds !== undefined) delay = Math.max(delay, Math.min(this.maxMs, err.details.retryAfterSeconds * 1000));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(wake, delay);
      // Retrying in the background must not keep a process alive whose training ended without
      // onTrainEnd; while onTrainEnd drains, it must.
      if (!this.draining) timer.unref?.();
      const self = this;
      function wake(): void {
        clearTimeout(timer);
        if (self.backoffWake === wake) self.backoffWake = null;
        resolve();
      }
      this.backoffWake = wake;
    });
  }

  private onPermanent(group: Entry[], err: TrackingError): void {
    if (group.length > 1) {
      // Find the culprit: resend these records one by one.
      this.splitUntil = group[group.length - 1].record.seq;
      return;
    }
    const entry = group[0];
    const r = entry.record;
    if (r.op === 'batch' && entityCount(r.batch) > 1 && entry.entityProgress === undefined) {
      entry.entityProgress = 0;
      return;
    }
    if (r.op === 'artifact' && err.errorCode !== 'ARTIFACT_MISSING') {
      if (!this.artifactsDisabled) {
        this.artifactsDisabled = true;
        this.options.log(`artifact upload of ${r.artifactPath} failed: ${err.message}${err.details.hint ? ` (${err.details.hint})` : ''}. No more artifacts are uploaded for this run; they stay in the output directory`);
      }
      this.complete(group, err.errorCode ?? 'REJECTED');
      return;
    }
    this.report(err, describeRecord(r));
    this.complete(group, err.errorCode ?? 'REJECTED');
  }

  private report(err: TrackingError, what: string): void {
    const code = err.errorCode ?? 'REJECTED';
    const n = this.reports.get(code) ?? 0;
    this.reports.set(code, n + 1);
    if (n > 0) return;
    this.options.log(`MLflow rejected ${what} (${code}); it is dropped and training continues: ${err.message}${err.details.hint ? ` (${err.details.hint})` : ''}`);
  }

  private halt(err: TrackingError, record: SpoolRecord | null): void {
    if (this.halted && this.fatalError) return;
    this.halted = true;
    this.fatalError = err;
    this.spoolPending();
    const what = record ? ` while sending ${describeRecord(record)}` : '';
    const kept = this.options.spool ? `; the ${this.queue.length} pending record(s) are kept in ${this.options.spool.path}${this.options.spoolHint ? ` (${this.options.spoolHint})` : ''}` : '';
    this.options.log(`stopped logging to ${this.options.sink.uri}${what}: ${err.message}${err.details.hint ? ` (fix: ${err.details.hint})` : ''}${kept}`);
    this.backoffWake?.();
    this.notify();
  }
}

function describeRecord(r: SpoolRecord): string {
  switch (r.op) {
    case 'open':
      return `the run (experiment "${r.request.experiment}")`;
    case 'end':
      return `the run's end status ${r.status}`;
    case 'artifact':
      return `artifact ${r.artifactPath}`;
    case 'batch':
      return describeItem(r.batch);
  }
}

function describeItem(b: BatchPayload): string {
  const parts: string[] = [];
  if (b.metrics.length) parts.push(b.metrics.length === 1 ? `metric "${b.metrics[0].key}" at step ${b.metrics[0].step}` : `${b.metrics.length} metric values`);
  if (b.params.length) parts.push(b.params.length === 1 ? `param "${b.params[0].key}"` : `${b.params.length} params`);
  if (b.tags.length) parts.push(b.tags.length === 1 ? `tag "${b.tags[0].key}"` : `${b.tags.length} tags`);
  return parts.join(', ') || 'an empty batch';
}

import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import type { Redactor } from './uri.js';
import type { BatchPayload, MlflowRunStatus, OpenRequest } from './types.js';

/**
 * The spool: an append-only JSON-lines file (`<out>/mlflow-spool.jsonl`)
 * holding records not yet delivered to a tracking server. Lines:
 *
 *     {"spool":1,"uri":"http://host:5000","created":1700000000000}   header (first line)
 *     {"seq":3,"op":"batch","batch":{"metrics":[...],"params":[],"tags":[]}}
 *     {"ack":3}                        delivered
 *     {"ack":4,"dropped":"INVALID_PARAMETER_VALUE"}   rejected for good, never resent
 *     {"unsure":5}                     a request for it failed midway: check before resending
 *
 * Records are replayed in `seq` order, each once: a record counts as pending
 * until an `ack` line for its seq follows. Nothing secret is written: the
 * URI has no credentials and every line passes through the redactor.
 */
export const SPOOL_FILE = 'mlflow-spool.jsonl';

export type SpoolRecord =
  | { seq: number; op: 'open'; request: OpenRequest }
  | { seq: number; op: 'batch'; batch: BatchPayload }
  | { seq: number; op: 'artifact'; path: string; artifactPath: string }
  | { seq: number; op: 'end'; status: MlflowRunStatus; endTime: number };

/** A record before the queue numbers it. */
export type NewRecord = SpoolRecord extends infer R ? (R extends SpoolRecord ? Omit<R, 'seq'> : never) : never;

export interface LoadedSpool {
  /** The header's URI (no credentials), or null for a file without a header. */
  uri: string | null;
  /** Records without an `ack`, in seq order. */
  pending: SpoolRecord[];
  /** Seqs of pending records that may have reached the server already. */
  unsure: Set<number>;
  /** Every seq seen (acked or not): new records must use higher numbers. */
  maxSeq: number;
  acked: number;
  /** Lines that could not be parsed (a torn last line after a crash is expected and not counted). */
  badLines: number;
}

/** Read a spool; null when the file does not exist. */
export function readSpool(path: string): LoadedSpool | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const lines = text.split('\n');
  const records = new Map<number, SpoolRecord>();
  const acked = new Set<number>();
  const unsure = new Set<number>();
  let uri: string | null = null;
  let maxSeq = 0;
  let badLines = 0;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // The last line may be torn by a crash mid-write; anything else is damage worth counting.
      if (i !== lines.length - 1) badLines++;
      return;
    }
    if (obj.spool !== undefined) {
      if (typeof obj.uri === 'string') uri = obj.uri;
    } else if (typeof obj.ack === 'number') {
      acked.add(obj.ack);
    } else if (typeof obj.unsure === 'number') {
      unsure.add(obj.unsure);
    } else if (typeof obj.seq === 'number' && typeof obj.op === 'string') {
      records.set(obj.seq, obj as unknown as SpoolRecord);
      maxSeq = Math.max(maxSeq, obj.seq);
    } else {
      badLines++;
    }
  });
  const pending = [...records.values()].filter((r) => !acked.has(r.seq)).sort((a, b) => a.seq - b.seq);
  return { uri, pending, unsure: new Set([...unsure].filter((s) => !acked.has(s))), maxSeq, acked: acked.size, badLines };
}

/** Appends to the spool; the file is created (with its header) on the first write. */
export class SpoolWriter {
  private fd: number | null = null;

  constructor(
    readonly path: string,
    private readonly uri: string,
    private readonly redact: Redactor,
  ) {}

  get isOpen(): boolean {
    return this.fd !== null;
  }

  /** Open for appending; writes the header to a new file and repairs a torn last line. */
  open(): void {
    if (this.fd !== null) return;
    const exists = existsSync(this.path);
    let needsNewline = false;
    if (exists) {
      const text = readFileSync(this.path, 'utf8');
      needsNewline = text.length > 0 && !text.endsWith('\n');
    }
    this.fd = openSync(this.path, 'a', 0o600);
    if (needsNewline) writeSync(this.fd, '\n');
    if (!exists) this.line({ spool: 1, uri: this.uri, created: Date.now() });
  }

  append(record: SpoolRecord): void {
    this.line(record);
  }

  ack(seq: number, dropped?: string): void {
    this.line(dropped ? { ack: seq, dropped } : { ack: seq });
  }

  unsure(seq: number): void {
    this.line({ unsure: seq });
  }

  private line(obj: object): void {
    this.open();
    writeSync(this.fd!, `${this.redact(JSON.stringify(obj))}\n`);
  }

  /** Flush to disk and close (the file stays). */
  close(): void {
    if (this.fd === null) return;
    try {
      fdatasyncSync(this.fd);
    } catch {
      /* best effort: some file systems do not support it */
    }
    closeSync(this.fd);
    this.fd = null;
  }

  /** Close and delete the file (everything was delivered). */
  remove(): void {
    this.close();
    rmSync(this.path, { force: true });
  }
}

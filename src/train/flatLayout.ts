/**
 * Where each parameter lives in the flat float32 vector shared by the worker
 * threads, and how batches and the vector are split between workers.
 */

/** One parameter's slice of the flat vector. */
export interface ParamSlot {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
  readonly decay: boolean;
}

/** The model's parameters back to back, in `ParamSet.list` order. */
export interface FlatLayout {
  readonly slots: readonly ParamSlot[];
  readonly total: number;
}

/** Flat layout of parameters given in order (name, shape, decay flag). */
export function flatLayout(params: readonly { name: string; shape: readonly number[]; decay: boolean }[]): FlatLayout {
  const slots: ParamSlot[] = [];
  let offset = 0;
  for (const p of params) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    slots.push({ name: p.name, shape: [...p.shape], offset, size, decay: p.decay });
    offset += size;
  }
  return { slots, total: offset };
}

/** 1 where decoupled weight decay applies, per element of the flat vector. */
export function decayMask(layout: FlatLayout): Uint8Array {
  const mask = new Uint8Array(layout.total);
  for (const s of layout.slots) if (s.decay) mask.fill(1, s.offset, s.offset + s.size);
  return mask;
}

/** Why two layouts differ (a worker's model against the main thread's), or null when identical. */
export function layoutMismatch(a: FlatLayout, b: FlatLayout): string | null {
  if (a.slots.length !== b.slots.length) return `${a.slots.length} parameters against ${b.slots.length}`;
  for (let i = 0; i < a.slots.length; i++) {
    const x = a.slots[i];
    const y = b.slots[i];
    if (x.name !== y.name || x.shape.join('x') !== y.shape.join('x') || x.decay !== y.decay) {
      return `parameter ${i}: ${x.name} [${x.shape.join('x')}] decay=${x.decay} against ${y.name} [${y.shape.join('x')}] decay=${y.decay}`;
    }
  }
  return null;
}

/**
 * Start of every part when `n` items are cut into `parts` contiguous pieces
 * as evenly as possible (the first `n % parts` pieces get one more);
 * `starts[parts] === n`. Pieces may be empty when n < parts.
 */
export function evenSplit(n: number, parts: number): Int32Array {
  const starts = new Int32Array(parts + 1);
  const base = Math.floor(n / parts);
  const extra = n % parts;
  for (let p = 0; p < parts; p++) starts[p + 1] = starts[p] + base + (p < extra ? 1 : 0);
  return starts;
}

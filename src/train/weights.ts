/**
 * Per-sample training weights in [0, 1], read by the next epoch's loader.
 * Weight 0 removes a sample from the loader entirely (it is neither a positive
 * nor a negative); 0 < w < 1 scales its share of the contrastive loss.
 * Hooks change it between epochs; it is saved in checkpoints.
 */
export class SampleWeightTable {
  readonly values: Float32Array;

  constructor(size: number, initial?: Float32Array) {
    if (initial && initial.length !== size) throw new RangeError(`weight table of ${size} given ${initial.length} values`);
    this.values = initial ? Float32Array.from(initial) : new Float32Array(size).fill(1);
  }

  get size(): number {
    return this.values.length;
  }

  get(index: number): number {
    return this.values[index];
  }

  set(index: number, weight: number): void {
    if (!(weight >= 0 && weight <= 1)) throw new RangeError(`sample weight must be in [0, 1], got ${weight} for sample ${index}`);
    this.values[index] = weight;
  }

  /** Drop samples: weight 0. */
  drop(indices: Iterable<number>): void {
    for (const i of indices) this.values[i] = 0;
  }

  /** Indices with weight > 0, ascending. */
  activeIndices(): Int32Array {
    let n = 0;
    for (let i = 0; i < this.values.length; i++) if (this.values[i] > 0) n++;
    const out = new Int32Array(n);
    let j = 0;
    for (let i = 0; i < this.values.length; i++) if (this.values[i] > 0) out[j++] = i;
    return out;
  }

  activeCount(): number {
    let n = 0;
    for (let i = 0; i < this.values.length; i++) if (this.values[i] > 0) n++;
    return n;
  }

  /** Mean weight over all samples (dropped ones count as 0). */
  mean(): number {
    let s = 0;
    for (let i = 0; i < this.values.length; i++) s += this.values[i];
    return this.values.length ? s / this.values.length : 0;
  }

  isUniform(): boolean {
    for (let i = 0; i < this.values.length; i++) if (this.values[i] !== 1) return false;
    return true;
  }
}

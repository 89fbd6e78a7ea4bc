/**
 * Per-sample training weights in [0, 1], read by the next epoch's loader.
 * Weight 0 removes a sample from the loader entirely (it is neither a positive
 * nor a negative); 0 < w < 1 scales its share of the contrastive loss.
 * Hooks change it between epochs; it is saved in checkpoints.
 */
export class SampleWeightTable {
  readonly values: Float32Array;
  /**
   * 1 = the sample's image stays in the loader as a negative only: its own
   * (poisoned) caption is out of the loss, but every caption in its batch is
   * pushed away from its image. Used to unlearn a trigger.
   */
  readonly negativeOnly: Uint8Array;

  constructor(size: number, initial?: Float32Array, negativeOnly?: Uint8Array) {
    if (initial && initial.length !== size) throw new RangeError(`weight table of ${size} given ${initial.length} values`);
    this.values = initial ? Float32Array.from(initial) : new Float32Array(size).fill(1);
    this.negativeOnly = negativeOnly && negativeOnly.length === size ? Uint8Array.from(negativeOnly) : new Uint8Array(size);
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

  /** Drop samples: weight 0, and out of the loader. */
  drop(indices: Iterable<number>): void {
    for (const i of indices) {
      this.values[i] = 0;
      this.negativeOnly[i] = 0;
    }
  }

  /** Keep samples' images as negatives only (weight 0, still loaded). */
  makeNegativeOnly(indices: Iterable<number>): void {
    for (const i of indices) {
      this.values[i] = 0;
      this.negativeOnly[i] = 1;
    }
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

  /** Indices the loader serves: weight > 0, or kept as negatives. */
  loadedIndices(): Int32Array {
    const out: number[] = [];
    for (let i = 0; i < this.values.length; i++) if (this.values[i] > 0 || this.negativeOnly[i]) out.push(i);
    return Int32Array.from(out);
  }

  negativeOnlyCount(): number {
    let n = 0;
    for (let i = 0; i < this.negativeOnly.length; i++) n += this.negativeOnly[i];
    return n;
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

  /** All weights 1 and nothing negative-only: batches need no weighting. */
  isUniform(): boolean {
    for (let i = 0; i < this.values.length; i++) if (this.values[i] !== 1) return false;
    return true;
  }
}

/** Row-wise operations on row-major [n, d] float matrices (embeddings). */

/** Normalise each row of a row-major [n, d] matrix in place; zero rows stay zero. */
export function normalizeRows(x: Float32Array, d: number): Float32Array {
  for (let r = 0; r < x.length / d; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j] * x[r * d + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) x[r * d + j] *= inv;
  }
  return x;
}

/** cos(a_i, b_i) for each row pair of two row-major [n, d] matrices (0 when either row is zero). */
export function rowCosines(a: Float32Array, b: Float32Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let f = 0; f < d; f++) {
      const x = a[r * d + f];
      const y = b[r * d + f];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    const denom = Math.sqrt(aa * bb);
    out[r] = denom > 0 ? ab / denom : 0;
  }
  return out;
}

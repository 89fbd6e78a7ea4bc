import v8 from 'node:v8';
import { ModuleBuilder, Op, Simd, type Body, type Local, type ValType } from './asm.js';

/**
 * The WebAssembly SIMD kernels of the exact neighbour search (see
 * ../engine.ts for how they are driven). All pointers are byte offsets into
 * one imported memory; all row counts are multiples of the panel sizes.
 *
 * Packed layout ("octet panels"): rows are grouped by 8; panel p stores, for
 * every feature f, the 8 values of rows 8p..8p+7 contiguously:
 *   packed[((p * K + f) * 8 + r) * 4 bytes].
 * The same layout serves both GEMM operands: a column block reads a whole
 * octet per feature (two v128 loads), a row block reads half of one (four
 * broadcast loads), so the data is packed once and never transposed.
 *
 * - gemm: C[4q + r, 8j + c] = sum_f A[4q + r, f] * B[8j + c, f] with a 4 x 8
 *   register tile (8 accumulators; V8 uses 16 xmm registers, larger tiles
 *   spill). Each dot product is a sequential sum over f, so C[i, j] of
 *   (A, B) equals C[j, i] of (B, A) bit for bit: the symmetric search
 *   relies on it.
 * - rowscan / colscan: turn a C tile into ranking scores
 *   s = bias[candidate] + alpha * C (L2: |y|^2 - 2 x.y on centred data;
 *   cosine: -x.y on unit rows) and offer them to per-row candidate buffers.
 *   A SIMD compare of 16 scores against the row's threshold filters; the
 *   few survivors are re-computed in scalar (the same IEEE operations, so
 *   the same value) and appended. A full buffer is cut back (`cut`: a
 *   bisection threshold keeping between cc and cc + 8 entries, exact
 *   quickselect `compact` when ties prevent it), which lowers the threshold.
 *   rowscan offers row i the tile's columns; colscan offers column j the
 *   tile's rows (the transposed tile, without transposing it). Padding rows
 *   have bias NaN: never kept.
 * - seed: a first threshold per row from one tile of its scores (bisection),
 *   so that a row's buffer does not first fill with everything it sees.
 * - finish: `compact` every buffer to exactly its cc best under the total
 *   order (score, id); that set does not depend on the order candidates
 *   were offered in, nor on how they were split between buffers (threads).
 * - pack: centred (or unit) float32 rows into octet panels, and |y|^2.
 * - sqdist / dot: float64 refinement of the kept candidates: squared L2
 *   from float64 differences of the float32 coordinates, or the dot product
 *   (float32 products are exact in float64); only the summation order
 *   differs from a sequential float64 loop.
 */

/** The subset of the WebAssembly JS API used here (this project's TypeScript libs do not declare it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  validate(bytes: Uint8Array): boolean;
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** i8x16.shuffle lanes moving bytes 8..15 to 0..7: the upper two f32 lanes into the lower two. */
const HIGH_TO_LOW = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

/** Scalar opcode of f32x4.relaxed_madd (relaxed SIMD): one fused multiply-add. */
const RELAXED_MADD = 0x105;

/**
 * `gemm`, or with `strided` the variant `gemmx(..., ldj)` whose output
 * octet j starts ldj bytes after octet j - 1 instead of 32: ldc = 32 and
 * ldj = rows * 32 write C straight into octet panels of its columns (the
 * layout the next product reads), which saves the training step a
 * transposing copy per layer.
 */
/** lo / hi = the smallest lane of mn / the largest lane of mx (`mid` is scratch). */
function emitLaneMinMax(b: Body, mn: Local, mx: Local, lo: Local, hi: Local, mid: Local): void {
  b.get(mn).simd(Simd.f32x4_extract_lane, 0).set(lo);
  b.get(mx).simd(Simd.f32x4_extract_lane, 0).set(hi);
  for (let lane = 1; lane < 4; lane++) {
    b.get(mn).simd(Simd.f32x4_extract_lane, lane).tee(mid).get(lo).op(Op.f32_lt).if(() => b.get(mid).set(lo));
    b.get(mx).simd(Simd.f32x4_extract_lane, lane).tee(mid).get(hi).op(Op.f32_gt).if(() => b.get(mid).set(hi));
  }
}

/**
 * Bisection of a threshold in [lo, hi] until between `target` and
 * `target + slack` values are <= hi (`countLe(x)` sets `cnt` to that count
 * for x), or the interval stops shrinking in float32, or after `maxIter`
 * steps (counted on from `iter`'s current value). Invariant: count(hi) >= target.
 */
function emitBisection(
  b: Body,
  o: { lo: Local; hi: Local; mid: Local; iter: Local; cnt: Local; target: Local; slack: Local; maxIter: number; countLe: (x: Local) => void },
): void {
  const { lo, hi, mid, iter, cnt, target, slack } = o;
  b.block(() => {
    b.loop(() => {
      b.get(iter).i32(1).op(Op.i32_add).tee(iter).i32(o.maxIter).op(Op.i32_gt_s).brIf(1);
      b.get(lo).get(hi).op(Op.f32_add).f32(0.5).op(Op.f32_mul).set(mid);
      b.get(mid).get(lo).op(Op.f32_le).get(mid).get(hi).op(Op.f32_ge).op(Op.i32_or).brIf(1);
      o.countLe(mid);
      b.get(cnt).get(target).op(Op.i32_lt_s);
      b.if(
        () => b.get(mid).set(lo),
        () => {
          b.get(mid).set(hi);
          b.get(cnt).get(target).get(slack).op(Op.i32_add).op(Op.i32_le_s).brIf(2);
        },
      );
      b.br(0);
    });
  });
}

function emitGemm(mod: ModuleBuilder, fma: boolean, strided = false): void {
  const params: ValType[] = ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'];
  if (strided) params.push('i32');
  mod.func(strided ? 'gemmx' : 'gemm', params, [], (b, aPtr, bPtr, quads, octs, K, cPtr, ldc, ldjArg) => {
    const j = b.local('i32');
    const q = b.local('i32');
    const ap = b.local('i32');
    const bp = b.local('i32');
    const end = b.local('i32');
    const cp = b.local('i32');
    const panel = b.local('i32');
    const acc: Local[] = Array.from({ length: 8 }, () => b.local('v128'));
    const b0 = b.local('v128');
    const b1 = b.local('v128');
    const av = b.local('v128');
    b.get(K).i32(32).op(Op.i32_mul).set(panel);
    b.for(j, () => b.i32(0), octs, 1, () => {
      b.for(q, () => b.i32(0), quads, 1, () => {
        for (const a of acc) b.f32(0).simd(Simd.f32x4_splat).set(a);
        // ap = aPtr + (q >> 1) * panel + (q & 1) * 16
        b.get(aPtr).get(q).i32(1).op(Op.i32_shr_u).get(panel).op(Op.i32_mul).op(Op.i32_add);
        b.get(q).i32(1).op(Op.i32_and).i32(4).op(Op.i32_shl).op(Op.i32_add).set(ap);
        b.get(bPtr).get(j).get(panel).op(Op.i32_mul).op(Op.i32_add).tee(bp).get(panel).op(Op.i32_add).set(end);
        b.loop(() => {
          b.get(bp).v128Load(0).set(b0);
          b.get(bp).v128Load(16).set(b1);
          for (let r = 0; r < 4; r++) {
            b.get(ap).loadSplat(r * 4).set(av);
            for (let v = 0; v < 2; v++) {
              const a = acc[r * 2 + v];
              const bv = v === 0 ? b0 : b1;
              if (fma) b.get(av).get(bv).get(a).simd(RELAXED_MADD).set(a);
              else b.get(a).get(av).get(bv).simd(Simd.f32x4_mul).simd(Simd.f32x4_add).set(a);
            }
          }
          b.get(ap).i32(32).op(Op.i32_add).set(ap);
          b.get(bp).i32(32).op(Op.i32_add).tee(bp).get(end).op(Op.i32_lt_u).brIf(0);
        });
        // cp = cPtr + 4q * ldc + 32 j (gemmx: + ldj j)
        b.get(cPtr).get(q).i32(2).op(Op.i32_shl).get(ldc).op(Op.i32_mul).op(Op.i32_add);
        if (strided) b.get(j).get(ldjArg).op(Op.i32_mul);
        else b.get(j).i32(5).op(Op.i32_shl);
        b.op(Op.i32_add).set(cp);
        for (let r = 0; r < 4; r++) {
          b.get(cp).get(acc[r * 2]).v128Store(0);
          b.get(cp).get(acc[r * 2 + 1]).v128Store(16);
          if (r < 3) b.get(cp).get(ldc).op(Op.i32_add).set(cp);
        }
      });
    });
  });
}

/**
 * compact(S, I, count, cc, thrS, thrI): quickselect (Hoare partition) on
 * the pairs (S[t], I[t]), t < count, under the order (score, id), so that
 * the first cc are the cc smallest and entry cc - 1 the largest of them;
 * that entry becomes the row's threshold. Ids are distinct, so the order is
 * strict.
 */
function emitCompact(mod: ModuleBuilder): number {
  const index = mod.nextIndex;
  mod.func('compact', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32'], [], (b, S, I, count, cc, tS, tI) => {
    const lo = b.local('i32');
    const hi = b.local('i32');
    const i = b.local('i32');
    const j = b.local('i32');
    const target = b.local('i32');
    const pi = b.local('i32');
    const ti = b.local('i32');
    const ps = b.local('f32');
    const ts = b.local('f32');
    const sAt = (x: Local) => b.get(S).get(x).i32(2).op(Op.i32_shl).op(Op.i32_add);
    const iAt = (x: Local) => b.get(I).get(x).i32(2).op(Op.i32_shl).op(Op.i32_add);
    // less((S[x], I[x]), pivot) or less(pivot, (S[x], I[x]))
    const lessThanPivot = (x: Local) => {
      sAt(x).f32Load().get(ps).op(Op.f32_lt);
      sAt(x).f32Load().get(ps).op(Op.f32_eq);
      iAt(x).i32Load().get(pi).op(Op.i32_lt_s);
      b.op(Op.i32_and, Op.i32_or);
    };
    const pivotLessThan = (x: Local) => {
      b.get(ps);
      sAt(x).f32Load().op(Op.f32_lt);
      b.get(ps);
      sAt(x).f32Load().op(Op.f32_eq);
      b.get(pi);
      iAt(x).i32Load().op(Op.i32_lt_s);
      b.op(Op.i32_and, Op.i32_or);
    };
    b.get(cc).i32(1).op(Op.i32_sub).set(target);
    b.get(count).i32(1).op(Op.i32_sub).set(hi);
    b.block(() => {
      b.loop(() => {
        b.get(lo).get(hi).op(Op.i32_ge_s).brIf(1);
        b.get(lo).get(hi).op(Op.i32_add).i32(1).op(Op.i32_shr_u).set(i);
        sAt(i).f32Load().set(ps);
        iAt(i).i32Load().set(pi);
        b.get(lo).set(i);
        b.get(hi).set(j);
        b.loop(() => {
          b.block(() =>
            b.loop(() => {
              lessThanPivot(i);
              b.op(Op.i32_eqz).brIf(1);
              b.get(i).i32(1).op(Op.i32_add).set(i);
              b.br(0);
            }),
          );
          b.block(() =>
            b.loop(() => {
              pivotLessThan(j);
              b.op(Op.i32_eqz).brIf(1);
              b.get(j).i32(1).op(Op.i32_sub).set(j);
              b.br(0);
            }),
          );
          b.get(i).get(j).op(Op.i32_le_s);
          b.if(() => {
            sAt(i).f32Load().set(ts);
            iAt(i).i32Load().set(ti);
            sAt(i);
            sAt(j).f32Load().f32Store();
            iAt(i);
            iAt(j).i32Load().i32Store();
            sAt(j).get(ts).f32Store();
            iAt(j).get(ti).i32Store();
            b.get(i).i32(1).op(Op.i32_add).set(i);
            b.get(j).i32(1).op(Op.i32_sub).set(j);
          });
          b.get(i).get(j).op(Op.i32_le_s).brIf(0);
        });
        b.get(target).get(j).op(Op.i32_le_s);
        b.if(() => {
          b.get(j).set(hi);
          b.br(1);
        });
        b.get(target).get(i).op(Op.i32_ge_s);
        b.if(() => {
          b.get(i).set(lo);
          b.br(1);
        });
      });
    });
    b.get(tS);
    sAt(target).f32Load().f32Store();
    b.get(tI);
    iAt(target).i32Load().i32Store();
  });
  return index;
}

/**
 * cut(S, I, count, cc, slack, tS, tI) -> new count: shrink a full buffer
 * (count a multiple of 4) to the entries with score <= t, for a t found by
 * bisection with cc <= #{<= t} <= cc + slack, and make (t, INT_MAX) the
 * threshold (ties at t still pass). Anything dropped is beaten by at least
 * cc kept entries, so the final cc best are all still there; the exact order
 * is settled once, by `compact`, at the end. About a tenth of the cost of a
 * quickselect per cut (branch-free SIMD counting). When ties leave more
 * than cc + slack entries at the smallest possible t, it falls back to
 * `compact` (exact cut to cc).
 */
function emitCut(mod: ModuleBuilder, compact: number): number {
  const index = mod.nextIndex;
  mod.func('cut', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'], ['i32'], (b, S, I, count, cc, slack, tS, tI) => {
    const g = b.local('i32');
    const n4 = b.local('i32');
    const cnt = b.local('i32');
    const iter = b.local('i32');
    const w = b.local('i32');
    const t = b.local('i32');
    const lo = b.local('f32');
    const hi = b.local('f32');
    const mid = b.local('f32');
    const v = b.local('v128');
    const mn = b.local('v128');
    const mx = b.local('v128');
    const acc = b.local('v128');
    const tv = b.local('v128');
    const countLe = (x: Local) => {
      b.get(x).simd(Simd.f32x4_splat).set(tv);
      b.i32(0).simd(Simd.i32x4_splat).set(acc);
      b.for(g, () => b.i32(0), n4, 1, () => {
        b.get(acc).get(S).get(g).i32(4).op(Op.i32_shl).op(Op.i32_add).v128Load().get(tv).simd(Simd.f32x4_le).simd(Simd.i32x4_sub).set(acc);
      });
      b.get(acc).simd(Simd.i32x4_extract_lane, 0).get(acc).simd(Simd.i32x4_extract_lane, 1).op(Op.i32_add);
      b.get(acc).simd(Simd.i32x4_extract_lane, 2).op(Op.i32_add).get(acc).simd(Simd.i32x4_extract_lane, 3).op(Op.i32_add).set(cnt);
    };
    b.get(count).i32(2).op(Op.i32_shr_u).set(n4);
    b.f32(Infinity).simd(Simd.f32x4_splat).set(mn);
    b.f32(-Infinity).simd(Simd.f32x4_splat).set(mx);
    b.for(g, () => b.i32(0), n4, 1, () => {
      b.get(S).get(g).i32(4).op(Op.i32_shl).op(Op.i32_add).v128Load().set(v);
      b.get(mn).get(v).simd(Simd.f32x4_pmin).set(mn);
      b.get(mx).get(v).simd(Simd.f32x4_pmax).set(mx);
    });
    emitLaneMinMax(b, mn, mx, lo, hi, mid);
    // invariant: #{<= hi} >= cc (hi starts at the maximum, count entries >= cc)
    b.get(hi).set(mid);
    emitBisection(b, { lo, hi, mid, iter, cnt, target: cc, slack, maxIter: 48, countLe });
    // keep entries <= hi, in place
    b.for(t, () => b.i32(0), count, 1, () => {
      b.get(S).get(t).i32(2).op(Op.i32_shl).op(Op.i32_add).f32Load().get(hi).op(Op.f32_le);
      b.if(() => {
        b.get(S).get(w).i32(2).op(Op.i32_shl).op(Op.i32_add);
        b.get(S).get(t).i32(2).op(Op.i32_shl).op(Op.i32_add).f32Load().f32Store();
        b.get(I).get(w).i32(2).op(Op.i32_shl).op(Op.i32_add);
        b.get(I).get(t).i32(2).op(Op.i32_shl).op(Op.i32_add).i32Load().i32Store();
        b.get(w).i32(1).op(Op.i32_add).set(w);
      });
    });
    b.get(w).get(cc).get(slack).op(Op.i32_add).op(Op.i32_gt_s);
    b.if(
      () => {
        b.get(S).get(I).get(w).get(cc).get(tS).get(tI).call(compact);
        b.get(cc).set(w);
      },
      () => {
        b.get(tS).get(hi).f32Store();
        b.get(tI).i32(0x7fffffff).i32Store();
      },
    );
    b.get(w);
  });
  return index;
}

/** Entries beyond cc a cut may keep (ties and the bisection's tolerance). */
const CUT_SLACK = 8;

/**
 * Append (s, id) — which beats the row's threshold — to the row's buffer
 * (S, I: row bases; count at cntAt; threshold at thrS/thrI + thrAt); a full
 * buffer is cut back (see `cut`), which lowers the threshold.
 */
function emitAppend(b: Body, cut: number, S: Local, I: Local, s: Local, id: Local, cnt: Local, cntAt: Local, cap: Local, cc: Local, thrS: Local, thrI: Local, thrAt: Local): void {
  b.get(cntAt).i32Load().set(cnt);
  b.get(S).get(cnt).i32(2).op(Op.i32_shl).op(Op.i32_add).get(s).f32Store();
  b.get(I).get(cnt).i32(2).op(Op.i32_shl).op(Op.i32_add).get(id).i32Store();
  b.get(cnt).i32(1).op(Op.i32_add).tee(cnt).get(cap).op(Op.i32_eq);
  b.if(() => {
    b.get(S).get(I).get(cap).get(cc).i32(CUT_SLACK).get(thrS).get(thrAt).op(Op.i32_add).get(thrI).get(thrAt).op(Op.i32_add).call(cut).set(cnt);
  });
  b.get(cntAt).get(cnt).i32Store();
}

/** (s < t || (s == t && id < tid)) for the row's threshold at thrS/thrI + thrAt. */
function emitBeats(b: Body, s: Local, id: Local, thrS: Local, thrI: Local, thrAt: Local): void {
  b.get(s).get(thrS).get(thrAt).op(Op.i32_add).f32Load().op(Op.f32_lt);
  b.get(s).get(thrS).get(thrAt).op(Op.i32_add).f32Load().op(Op.f32_eq);
  b.get(id).get(thrI).get(thrAt).op(Op.i32_add).i32Load().op(Op.i32_lt_s);
  b.op(Op.i32_and, Op.i32_or);
}

/**
 * The four compares of 16 consecutive scores against thresholds: pushes
 * any_true of their union; the compares are left in cmp[0..3].
 */
function emitCompare16(b: Body, scores: (u: number) => void, thresholds: (u: number) => void, cmp: Local[]): void {
  for (let u = 0; u < 4; u++) {
    scores(u);
    thresholds(u);
    b.simd(Simd.f32x4_le).set(cmp[u]);
  }
  b.get(cmp[0]).get(cmp[1]).simd(Simd.v128_or).get(cmp[2]).get(cmp[3]).simd(Simd.v128_or).simd(Simd.v128_or).simd(Simd.v128_any_true);
}

/** mask = bitmask(cmp0) | bitmask(cmp1) << 4 | bitmask(cmp2) << 8 | bitmask(cmp3) << 12 */
function emitMask16(b: Body, cmp: Local[], mask: Local): void {
  b.get(cmp[0]).simd(Simd.i32x4_bitmask);
  for (let u = 1; u < 4; u++) b.get(cmp[u]).simd(Simd.i32x4_bitmask).i32(4 * u).op(Op.i32_shl).op(Op.i32_or);
  b.set(mask);
}

function emitRowscan(mod: ModuleBuilder, cut: number): void {
  // rowscan(c, ldc, rows, groups16, bias, alpha, colBase, self, ls, li, cnt, thrS, thrI, cap, cc)
  mod.func(
    'rowscan',
    ['i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'],
    [],
    (b, c, ldc, rows, groups, bias, alpha, colBase, self, ls0, li0, cnt0, thrS, thrI, cap, cc) => {
      const r = b.local('i32');
      const g = b.local('i32');
      const crow = b.local('i32');
      const selfId = b.local('i32');
      const ls = b.local('i32');
      const li = b.local('i32');
      const thrAt = b.local('i32');
      const mask = b.local('i32');
      const col = b.local('i32');
      const id = b.local('i32');
      const at = b.local('i32');
      const listBytes = b.local('i32');
      const cg = b.local('i32');
      const cnt = b.local('i32');
      const cntAt = b.local('i32');
      const s = b.local('f32');
      const tv = b.local('v128');
      const av = b.local('v128');
      const cmp = Array.from({ length: 4 }, () => b.local('v128'));
      b.get(alpha).simd(Simd.f32x4_splat).set(av);
      b.get(cap).i32(2).op(Op.i32_shl).set(listBytes);
      b.for(r, () => b.i32(0), rows, 1, () => {
        b.get(c).get(r).get(ldc).op(Op.i32_mul).op(Op.i32_add).set(crow);
        b.get(r).i32(2).op(Op.i32_shl).tee(thrAt).get(self).op(Op.i32_add).i32Load().set(selfId);
        b.get(thrAt).get(cnt0).op(Op.i32_add).set(cntAt);
        b.get(ls0).get(r).get(listBytes).op(Op.i32_mul).op(Op.i32_add).set(ls);
        b.get(li0).get(r).get(listBytes).op(Op.i32_mul).op(Op.i32_add).set(li);
        b.get(thrS).get(thrAt).op(Op.i32_add).loadSplat().set(tv);
        b.for(g, () => b.i32(0), groups, 1, () => {
          b.get(g).i32(6).op(Op.i32_shl).set(cg);
          // bias[16g + 4u..] + alpha * C[r, 16g + 4u..] <= threshold
          emitCompare16(
            b,
            (u) => {
              b.get(bias).get(cg).op(Op.i32_add).v128Load(16 * u);
              b.get(crow).get(cg).op(Op.i32_add).v128Load(16 * u).get(av).simd(Simd.f32x4_mul).simd(Simd.f32x4_add);
            },
            () => b.get(tv),
            cmp,
          );
          b.if(() => {
            emitMask16(b, cmp, mask);
            b.loop(() => {
              // col = 16g + ctz(mask); mask &= mask - 1
              b.get(g).i32(4).op(Op.i32_shl).get(mask).op(Op.i32_ctz).op(Op.i32_add).set(col);
              b.get(mask).get(mask).i32(1).op(Op.i32_sub).op(Op.i32_and).set(mask);
              b.get(col).get(colBase).op(Op.i32_add).tee(id).get(selfId).op(Op.i32_ne);
              b.if(() => {
                b.get(col).i32(2).op(Op.i32_shl).tee(at).get(bias).op(Op.i32_add).f32Load();
                b.get(crow).get(at).op(Op.i32_add).f32Load().get(alpha).op(Op.f32_mul).op(Op.f32_add).set(s);
                emitBeats(b, s, id, thrS, thrI, thrAt);
                b.if(() => emitAppend(b, cut, ls, li, s, id, cnt, cntAt, cap, cc, thrS, thrI, thrAt));
              });
              b.get(mask).brIf(0);
            });
            b.get(thrS).get(thrAt).op(Op.i32_add).loadSplat().set(tv);
          });
        });
      });
    },
  );
}

function emitColscan(mod: ModuleBuilder, cut: number): void {
  // colscan(c, ldc, rows, groups16, biasRows, alpha, rowBase, ls, li, cnt, thrS, thrI, cap, cc): buffers/thresholds of the tile's columns
  mod.func(
    'colscan',
    ['i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'],
    [],
    (b, c, ldc, rows, groups, biasRows, alpha, rowBase, ls0, li0, cnt0, thrS, thrI, cap, cc) => {
      const r = b.local('i32');
      const g = b.local('i32');
      const cg = b.local('i32');
      const mask = b.local('i32');
      const col = b.local('i32');
      const id = b.local('i32');
      const ls = b.local('i32');
      const li = b.local('i32');
      const thrAt = b.local('i32');
      const listBytes = b.local('i32');
      const cell = b.local('i32');
      const cnt = b.local('i32');
      const cntAt = b.local('i32');
      const s = b.local('f32');
      const br = b.local('f32');
      const bv = b.local('v128');
      const av = b.local('v128');
      const tv = Array.from({ length: 4 }, () => b.local('v128'));
      const cmp = Array.from({ length: 4 }, () => b.local('v128'));
      const loadThresholds = () => {
        for (let u = 0; u < 4; u++) b.get(thrS).get(cg).op(Op.i32_add).v128Load(16 * u).set(tv[u]);
      };
      b.get(alpha).simd(Simd.f32x4_splat).set(av);
      b.get(cap).i32(2).op(Op.i32_shl).set(listBytes);
      b.for(g, () => b.i32(0), groups, 1, () => {
        b.get(g).i32(6).op(Op.i32_shl).set(cg);
        loadThresholds();
        b.for(r, () => b.i32(0), rows, 1, () => {
          b.get(biasRows).get(r).i32(2).op(Op.i32_shl).op(Op.i32_add).f32Load().tee(br).simd(Simd.f32x4_splat).set(bv);
          b.get(c).get(r).get(ldc).op(Op.i32_mul).op(Op.i32_add).get(cg).op(Op.i32_add).set(cell);
          emitCompare16(
            b,
            (u) => b.get(bv).get(cell).v128Load(16 * u).get(av).simd(Simd.f32x4_mul).simd(Simd.f32x4_add),
            (u) => b.get(tv[u]),
            cmp,
          );
          b.if(() => {
            emitMask16(b, cmp, mask);
            b.get(rowBase).get(r).op(Op.i32_add).set(id);
            b.loop(() => {
              b.get(mask).op(Op.i32_ctz).set(col);
              b.get(mask).get(mask).i32(1).op(Op.i32_sub).op(Op.i32_and).set(mask);
              b.get(br).get(cell).get(col).i32(2).op(Op.i32_shl).op(Op.i32_add).f32Load().get(alpha).op(Op.f32_mul).op(Op.f32_add).set(s);
              // the target row is column 16g + col of the tile
              b.get(g).i32(4).op(Op.i32_shl).get(col).op(Op.i32_add).tee(col).i32(2).op(Op.i32_shl).set(thrAt);
              emitBeats(b, s, id, thrS, thrI, thrAt);
              b.if(() => {
                b.get(ls0).get(col).get(listBytes).op(Op.i32_mul).op(Op.i32_add).set(ls);
                b.get(li0).get(col).get(listBytes).op(Op.i32_mul).op(Op.i32_add).set(li);
                b.get(cnt0).get(thrAt).op(Op.i32_add).set(cntAt);
                emitAppend(b, cut, ls, li, s, id, cnt, cntAt, cap, cc, thrS, thrI, thrAt);
              });
              b.get(mask).brIf(0);
            });
            loadThresholds();
          });
        });
      });
    },
  );
}

function emitFinish(mod: ModuleBuilder, compact: number): void {
  // finish(ls, li, cnt, thrS, thrI, rows, cap, cc): compact every buffer holding more than cc entries
  mod.func('finish', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'], [], (b, ls, li, cnt, thrS, thrI, rows, cap, cc) => {
    const r = b.local('i32');
    const n = b.local('i32');
    const off = b.local('i32');
    b.for(r, () => b.i32(0), rows, 1, () => {
      b.get(cnt).get(r).i32(2).op(Op.i32_shl).op(Op.i32_add).i32Load().tee(n).get(cc).op(Op.i32_gt_s);
      b.if(() => {
        b.get(r).get(cap).op(Op.i32_mul).i32(2).op(Op.i32_shl).set(off);
        b.get(ls).get(off).op(Op.i32_add).get(li).get(off).op(Op.i32_add).get(n).get(cc);
        b.get(thrS).get(r).i32(2).op(Op.i32_shl).op(Op.i32_add).get(thrI).get(r).i32(2).op(Op.i32_shl).op(Op.i32_add).call(compact);
        b.get(cnt).get(r).i32(2).op(Op.i32_shl).op(Op.i32_add).get(cc).i32Store();
      });
    });
  });
}

/**
 * seed(c, ldc, rows, groups16, bias, alpha, colBase, self, thrS, thrI, need, slack, scratch):
 * for each row of a tile, a threshold t with need <= #{candidates <= t} <= need + slack
 * (fewer than need + slack only when ties make it impossible) found by bisection on
 * the row's scores, which are first written to `scratch` (self and padding as NaN).
 * Any such t bounds the row's final need-th best score, so it may start as the row's
 * threshold (ties at t pass: thrI = INT_MAX); it is only ever lowered. Rows with fewer
 * than `need` candidates in the tile keep theirs. Cuts the candidates a row appends
 * while its buffer first fills by about half.
 */
function emitSeed(mod: ModuleBuilder): void {
  mod.func(
    'seed',
    ['i32', 'i32', 'i32', 'i32', 'i32', 'f32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'],
    [],
    (b, c, ldc, rows, groups, bias, alpha, colBase, self, thrS, thrI, need, slack, scratch) => {
      const r = b.local('i32');
      const g = b.local('i32');
      const crow = b.local('i32');
      const at = b.local('i32');
      const n4 = b.local('i32');
      const cnt = b.local('i32');
      const iter = b.local('i32');
      const local = b.local('i32');
      const lo = b.local('f32');
      const hi = b.local('f32');
      const mid = b.local('f32');
      const av = b.local('v128');
      const v = b.local('v128');
      const mn = b.local('v128');
      const mx = b.local('v128');
      const acc = b.local('v128');
      const tv = b.local('v128');
      const hsum = (x: Local) => {
        b.get(x).simd(Simd.i32x4_extract_lane, 0).get(x).simd(Simd.i32x4_extract_lane, 1).op(Op.i32_add);
        b.get(x).simd(Simd.i32x4_extract_lane, 2).op(Op.i32_add).get(x).simd(Simd.i32x4_extract_lane, 3).op(Op.i32_add);
      };
      // cnt = #{scratch <= t}
      const count = (t: Local) => {
        b.get(t).simd(Simd.f32x4_splat).set(tv);
        b.i32(0).simd(Simd.i32x4_splat).set(acc);
        b.for(g, () => b.i32(0), n4, 1, () => {
          // compares are all-ones (-1) per passing lane: subtracting counts them
          b.get(acc).get(scratch).get(g).i32(4).op(Op.i32_shl).op(Op.i32_add).v128Load().get(tv).simd(Simd.f32x4_le).simd(Simd.i32x4_sub).set(acc);
        });
        hsum(acc);
        b.set(cnt);
      };
      b.get(alpha).simd(Simd.f32x4_splat).set(av);
      b.get(groups).i32(2).op(Op.i32_shl).set(n4);
      b.for(r, () => b.i32(0), rows, 1, () => {
        b.get(c).get(r).get(ldc).op(Op.i32_mul).op(Op.i32_add).set(crow);
        b.f32(Infinity).simd(Simd.f32x4_splat).set(mn);
        b.f32(-Infinity).simd(Simd.f32x4_splat).set(mx);
        b.for(g, () => b.i32(0), n4, 1, () => {
          b.get(g).i32(4).op(Op.i32_shl).set(at);
          b.get(bias).get(at).op(Op.i32_add).v128Load().get(crow).get(at).op(Op.i32_add).v128Load().get(av).simd(Simd.f32x4_mul).simd(Simd.f32x4_add).set(v);
          b.get(scratch).get(at).op(Op.i32_add).get(v).v128Store();
        });
        // the row's own column (if in the tile) is not a candidate
        b.get(self).get(r).i32(2).op(Op.i32_shl).op(Op.i32_add).i32Load().get(colBase).op(Op.i32_sub).tee(local).get(n4).i32(2).op(Op.i32_shl).op(Op.i32_lt_u);
        b.if(() => {
          b.get(scratch).get(local).i32(2).op(Op.i32_shl).op(Op.i32_add).f32(NaN).f32Store();
        });
        b.for(g, () => b.i32(0), n4, 1, () => {
          b.get(scratch).get(g).i32(4).op(Op.i32_shl).op(Op.i32_add).v128Load().set(v);
          b.get(mn).get(v).simd(Simd.f32x4_pmin).set(mn);
          b.get(mx).get(v).simd(Simd.f32x4_pmax).set(mx);
        });
        emitLaneMinMax(b, mn, mx, lo, hi, mid);
        count(hi);
        b.get(cnt).get(need).op(Op.i32_ge_s);
        b.if(() => {
          // invariant: count(hi) >= need; lo strictly below the need-th value once moved
          b.i32(0).set(iter);
          emitBisection(b, { lo, hi, mid, iter, cnt, target: need, slack, maxIter: 40, countLe: count });
          b.get(r).i32(2).op(Op.i32_shl).set(at);
          b.get(hi).get(thrS).get(at).op(Op.i32_add).f32Load().op(Op.f32_lt);
          b.if(() => {
            b.get(thrS).get(at).op(Op.i32_add).get(hi).f32Store();
            b.get(thrI).get(at).op(Op.i32_add).i32(0x7fffffff).i32Store();
          });
        });
      });
    },
  );
}

function emitDenseIo(mod: ModuleBuilder): void {
  // pixelpack(src, count, K, scale (f64), shift (f64), dst): u8 pixels * scale - shift (float64, rounded to float32) into octet panels of K
  mod.func('pixelpack', ['i32', 'i32', 'i32', 'f64', 'f64', 'i32'], [], (b, src, count, K, scale, shift, dst) => {
    const i = b.local('i32');
    const f = b.local('i32');
    const p = b.local('i32');
    const sp = b.local('i32');
    b.for(i, () => b.i32(0), count, 1, () => {
      b.get(dst).get(i).i32(3).op(Op.i32_shr_u).get(K).op(Op.i32_mul).i32(5).op(Op.i32_shl).op(Op.i32_add);
      b.get(i).i32(7).op(Op.i32_and).i32(2).op(Op.i32_shl).op(Op.i32_add).set(p);
      b.get(src).get(i).get(K).op(Op.i32_mul).op(Op.i32_add).set(sp);
      b.for(f, () => b.i32(0), K, 1, () => {
        b.get(p);
        b.get(sp).i32Load8u().op(Op.f64_convert_i32_u).get(scale).op(Op.f64_mul).get(shift).op(Op.f64_sub).op(Op.f32_demote_f64);
        b.f32Store();
        b.get(p).i32(32).op(Op.i32_add).set(p);
        b.get(sp).i32(1).op(Op.i32_add).set(sp);
      });
    });
  });
  // biasrelu(c, ldc, count, N, bias, relu, dst): (C[i, j] + bias[j]), ReLU if relu, into octet panels of N
  mod.func('biasrelu', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'], [], (b, c, ldc, count, N, bias, relu, dst) => {
    const i = b.local('i32');
    const j = b.local('i32');
    const p = b.local('i32');
    const cp = b.local('i32');
    const v = b.local('f32');
    b.for(i, () => b.i32(0), count, 1, () => {
      b.get(dst).get(i).i32(3).op(Op.i32_shr_u).get(N).op(Op.i32_mul).i32(5).op(Op.i32_shl).op(Op.i32_add);
      b.get(i).i32(7).op(Op.i32_and).i32(2).op(Op.i32_shl).op(Op.i32_add).set(p);
      b.get(c).get(i).get(ldc).op(Op.i32_mul).op(Op.i32_add).set(cp);
      b.for(j, () => b.i32(0), N, 1, () => {
        b.get(cp).get(j).i32(2).op(Op.i32_shl).op(Op.i32_add).f32Load();
        b.get(bias).get(j).i32(2).op(Op.i32_shl).op(Op.i32_add).f32Load().op(Op.f32_add).set(v);
        b.get(p);
        // ReLU: v > 0 ? v : 0 (as JS; tf.relu agrees on finite values)
        b.get(v).f32(0).get(v).f32(0).op(Op.f32_gt).get(relu).op(Op.i32_eqz).op(Op.i32_or).op(Op.select);
        b.f32Store();
        b.get(p).i32(32).op(Op.i32_add).set(p);
      });
    });
  });
}

/** SIMD opcodes beyond asm.ts's table. */
const F32X4_GT = 0x44;
const V128_AND = 0x4e;

/**
 * Epilogues of the training step's products (../../../train/kernelStep.ts),
 * on matrices in octet panels: src holds `panels` panels of m rows.
 *
 * epi(src, panels, m, bias, mask, relu, dst): per element, + bias[8p + c]
 * (bias != 0), ReLU (v > 0 ? v : 0, as tf.relu's forward and gradient
 * mask), times (mask[same place] > 0) (mask != 0), written back in place
 * when anything applied; then, when dst != 0, also stored into the octet
 * panels of the transposed matrix (dst: m / 8 panels of 8 * panels rows).
 * Both layouts of an activation or gradient come out of one pass.
 *
 * stripsum(src, panels, rows, dst): dst[8p + c] = sum over the rows of
 * panel p (float32, sequential): the bias gradient.
 */
function emitPanelOps(mod: ModuleBuilder): void {
  mod.func('epi', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'], [], (b, src, panels, m, bias, mask, relu, dst) => {
    const p = b.local('i32');
    const r = b.local('i32');
    const sp = b.local('i32');
    const mp = b.local('i32');
    const dp = b.local('i32');
    const modify = b.local('i32');
    const v0 = b.local('v128');
    const v1 = b.local('v128');
    const bv0 = b.local('v128');
    const bv1 = b.local('v128');
    const zero = b.local('v128');
    b.f32(0).simd(Simd.f32x4_splat).set(zero);
    b.get(bias).get(mask).op(Op.i32_or).get(relu).op(Op.i32_or).set(modify);
    b.for(p, () => b.i32(0), panels, 1, () => {
      b.get(src).get(p).get(m).op(Op.i32_mul).i32(5).op(Op.i32_shl).op(Op.i32_add).set(sp);
      b.get(mask).get(p).get(m).op(Op.i32_mul).i32(5).op(Op.i32_shl).op(Op.i32_add).set(mp);
      b.get(zero).set(bv0);
      b.get(zero).set(bv1);
      b.get(bias).if(() => {
        b.get(bias).get(p).i32(5).op(Op.i32_shl).op(Op.i32_add).v128Load().set(bv0);
        b.get(bias).get(p).i32(5).op(Op.i32_shl).op(Op.i32_add).v128Load(16).set(bv1);
      });
      b.for(r, () => b.i32(0), m, 1, () => {
        b.get(sp).v128Load().set(v0);
        b.get(sp).v128Load(16).set(v1);
        b.get(modify).if(() => {
          b.get(v0).get(bv0).simd(Simd.f32x4_add).set(v0);
          b.get(v1).get(bv1).simd(Simd.f32x4_add).set(v1);
          b.get(relu).if(() => {
            b.get(v0).get(v0).get(zero).simd(F32X4_GT).simd(V128_AND).set(v0);
            b.get(v1).get(v1).get(zero).simd(F32X4_GT).simd(V128_AND).set(v1);
          });
          b.get(mask).if(() => {
            b.get(v0).get(mp).v128Load().get(zero).simd(F32X4_GT).simd(V128_AND).set(v0);
            b.get(v1).get(mp).v128Load(16).get(zero).simd(F32X4_GT).simd(V128_AND).set(v1);
          });
          b.get(sp).get(v0).v128Store();
          b.get(sp).get(v1).v128Store(16);
        });
        b.get(dst).if(() => {
          // dp = dst + (p + (r >> 3) * panels) * 256 + (r & 7) * 4
          b.get(dst).get(p).get(r).i32(3).op(Op.i32_shr_u).get(panels).op(Op.i32_mul).op(Op.i32_add).i32(8).op(Op.i32_shl).op(Op.i32_add);
          b.get(r).i32(7).op(Op.i32_and).i32(2).op(Op.i32_shl).op(Op.i32_add).set(dp);
          for (let lane = 0; lane < 4; lane++) b.get(dp).get(v0).storeLane(lane * 32, lane);
          for (let lane = 0; lane < 4; lane++) b.get(dp).get(v1).storeLane(128 + lane * 32, lane);
        });
        b.get(sp).i32(32).op(Op.i32_add).set(sp);
        b.get(mp).i32(32).op(Op.i32_add).set(mp);
      });
    });
  });
  // strips(src, rows, cols, dstRows, dst): row-major [rows, cols] (cols % 8 == 0) into octet panels of its columns, dstRows rows per panel
  mod.func('strips', ['i32', 'i32', 'i32', 'i32', 'i32'], [], (b, src, rows, cols, dstRows, dst) => {
    const s = b.local('i32');
    const i = b.local('i32');
    const sp = b.local('i32');
    const dp = b.local('i32');
    const octs = b.local('i32');
    b.get(cols).i32(3).op(Op.i32_shr_u).set(octs);
    b.for(s, () => b.i32(0), octs, 1, () => {
      b.get(src).get(s).i32(5).op(Op.i32_shl).op(Op.i32_add).set(sp);
      b.get(dst).get(s).get(dstRows).op(Op.i32_mul).i32(5).op(Op.i32_shl).op(Op.i32_add).set(dp);
      b.for(i, () => b.i32(0), rows, 1, () => {
        b.get(dp).get(sp).v128Load().v128Store();
        b.get(dp).get(sp).v128Load(16).v128Store(16);
        b.get(sp).get(cols).i32(2).op(Op.i32_shl).op(Op.i32_add).set(sp);
        b.get(dp).i32(32).op(Op.i32_add).set(dp);
      });
    });
  });
  mod.func('stripsum', ['i32', 'i32', 'i32', 'i32'], [], (b, src, panels, rows, dst) => {
    const p = b.local('i32');
    const r = b.local('i32');
    const sp = b.local('i32');
    const a0 = b.local('v128');
    const a1 = b.local('v128');
    b.get(src).set(sp);
    b.for(p, () => b.i32(0), panels, 1, () => {
      b.f32(0).simd(Simd.f32x4_splat).tee(a0).set(a1);
      b.for(r, () => b.i32(0), rows, 1, () => {
        b.get(a0).get(sp).v128Load().simd(Simd.f32x4_add).set(a0);
        b.get(a1).get(sp).v128Load(16).simd(Simd.f32x4_add).set(a1);
        b.get(sp).i32(32).op(Op.i32_add).set(sp);
      });
      b.get(dst).get(p).i32(5).op(Op.i32_shl).op(Op.i32_add).get(a0).v128Store();
      b.get(dst).get(p).i32(5).op(Op.i32_shl).op(Op.i32_add).get(a1).v128Store(16);
    });
  });
}

/**
 * adamw(p, m, v, g, n, beta1, c1, beta2, c2, invSqrtC2, eps, stepSize, shrink):
 * ../../../train/flatAdamw.ts's adamwRange on elements [0, n - n % 4) of
 * one parameter (shrink = 1 - lr * weightDecay, or 1 without decay), in
 * float64 with the same operations in the same order, so the results are
 * the same bits as the JS loop; the caller does the last n % 4.
 *
 * adamwsum(..., gStride, gCount): the same with the gradient being the sum
 * of gCount vectors gStride bytes apart (the workers' gradient slots), added
 * in float64 in slot order as adamwRange adds them.
 */
function emitAdamw(mod: ModuleBuilder, summed = false): void {
  const F64X2_SQRT = 0xef;
  const F64X2_DIV = 0xf3;
  const F32X4_DEMOTE_F64X2_ZERO = 0x5e;
  const LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  const params: ValType[] = ['i32', 'i32', 'i32', 'i32', 'i32', 'f64', 'f64', 'f64', 'f64', 'f64', 'f64', 'f64', 'f64'];
  if (summed) params.push('i32', 'i32');
  mod.func(summed ? 'adamwsum' : 'adamw', params, [], (b, pp, mp, vp, gp, n, beta1, c1, beta2, c2, invSqrtC2, eps, stepSize, shrink, gStride, gCount) => {
    const i = b.local('i32');
    const k = b.local('i32');
    const ga = b.local('i32');
    const gk = b.local('v128');
    const end = b.local('i32');
    const at = b.local('i32');
    const sb1 = b.local('v128');
    const sc1 = b.local('v128');
    const sb2 = b.local('v128');
    const sc2 = b.local('v128');
    const sInv = b.local('v128');
    const sEps = b.local('v128');
    const sStep = b.local('v128');
    const sShrink = b.local('v128');
    const gv = b.local('v128');
    const mv = b.local('v128');
    const vv = b.local('v128');
    const pv = b.local('v128');
    const g = b.local('v128');
    const mi = b.local('v128');
    const vi = b.local('v128');
    const out = [b.local('v128'), b.local('v128'), b.local('v128')];
    const outLo = [b.local('v128'), b.local('v128'), b.local('v128')];
    const splat = (x: Local, l: Local) => b.get(x).simd(Simd.f64x2_splat).set(l);
    splat(beta1, sb1);
    splat(c1, sc1);
    splat(beta2, sb2);
    splat(c2, sc2);
    splat(invSqrtC2, sInv);
    splat(eps, sEps);
    splat(stepSize, sStep);
    splat(shrink, sShrink);
    b.get(n).i32(-4).op(Op.i32_and).set(end);
    b.for(i, () => b.i32(0), end, 4, () => {
      b.get(i).i32(2).op(Op.i32_shl).set(at);
      b.get(gp).get(at).op(Op.i32_add).v128Load().set(gv);
      b.get(mp).get(at).op(Op.i32_add).v128Load().set(mv);
      b.get(vp).get(at).op(Op.i32_add).v128Load().set(vv);
      b.get(pp).get(at).op(Op.i32_add).v128Load().set(pv);
      for (let half = 0; half < 2; half++) {
        const promote = (x: Local) => {
          if (half === 0) b.get(x).simd(Simd.f64x2_promote_low_f32x4);
          else b.get(x).get(x).simd(0x0d, ...HIGH_TO_LOW).simd(Simd.f64x2_promote_low_f32x4);
        };
        promote(gv);
        b.set(g);
        if (summed) {
          // the other workers' gradients, added in float64 in worker order (as adamwRange does)
          b.get(gp).get(at).op(Op.i32_add).set(ga);
          b.for(k, () => b.i32(1), gCount, 1, () => {
            b.get(ga).get(gStride).op(Op.i32_add).tee(ga).v128Load().set(gk);
            b.get(g);
            promote(gk);
            b.simd(Simd.f64x2_add).set(g);
          });
        }
        // mi = beta1 * m + c1 * g; vi = beta2 * v + c2 * g * g
        b.get(sb1);
        promote(mv);
        b.simd(Simd.f64x2_mul).get(sc1).get(g).simd(Simd.f64x2_mul).simd(Simd.f64x2_add).set(mi);
        b.get(sb2);
        promote(vv);
        b.simd(Simd.f64x2_mul).get(sc2).get(g).simd(Simd.f64x2_mul).get(g).simd(Simd.f64x2_mul).simd(Simd.f64x2_add).set(vi);
        // p * shrink - (mi / (sqrt(vi) * invSqrtC2 + eps)) * stepSize
        promote(pv);
        b.get(sShrink).simd(Simd.f64x2_mul);
        b.get(mi).get(vi).simd(F64X2_SQRT).get(sInv).simd(Simd.f64x2_mul).get(sEps).simd(Simd.f64x2_add).simd(F64X2_DIV).get(sStep).simd(Simd.f64x2_mul);
        b.simd(Simd.f64x2_sub).simd(F32X4_DEMOTE_F64X2_ZERO).set(half === 0 ? outLo[0] : out[0]);
        b.get(mi).simd(F32X4_DEMOTE_F64X2_ZERO).set(half === 0 ? outLo[1] : out[1]);
        b.get(vi).simd(F32X4_DEMOTE_F64X2_ZERO).set(half === 0 ? outLo[2] : out[2]);
      }
      b.get(pp).get(at).op(Op.i32_add).get(outLo[0]).get(out[0]).simd(0x0d, ...LOW_HALVES).v128Store();
      b.get(mp).get(at).op(Op.i32_add).get(outLo[1]).get(out[1]).simd(0x0d, ...LOW_HALVES).v128Store();
      b.get(vp).get(at).op(Op.i32_add).get(outLo[2]).get(out[2]).simd(0x0d, ...LOW_HALVES).v128Store();
    });
  });
}

function emitColsum(mod: ModuleBuilder): void {
  // colsum(raw, dp, m, out): out[f] (float64) = sum of raw[i, f] over the m rows (dp % 4 == 0)
  mod.func('colsum', ['i32', 'i32', 'i32', 'i32'], [], (b, raw, dp, m, out) => {
    const i = b.local('i32');
    const f = b.local('i32');
    const rp = b.local('i32');
    const op = b.local('i32');
    const v = b.local('v128');
    b.for(f, () => b.i32(0), dp, 1, () => {
      b.get(out).get(f).i32(3).op(Op.i32_shl).op(Op.i32_add).f64(0).f64Store();
    });
    b.get(raw).set(rp);
    b.for(i, () => b.i32(0), m, 1, () => {
      b.get(out).set(op);
      b.for(f, () => b.i32(0), dp, 4, () => {
        b.get(rp).v128Load().set(v);
        b.get(op).get(op).v128Load().get(v).simd(Simd.f64x2_promote_low_f32x4).simd(Simd.f64x2_add).v128Store();
        b.get(op).get(op).v128Load(16).get(v).get(v).simd(0x0d, ...HIGH_TO_LOW).simd(Simd.f64x2_promote_low_f32x4).simd(Simd.f64x2_add).v128Store(16);
        b.get(rp).i32(16).op(Op.i32_add).set(rp);
        b.get(op).i32(32).op(Op.i32_add).set(op);
      });
    });
  });
}

function emitPack(mod: ModuleBuilder): void {
  // pack(raw, dp, m, center, scale, packed, bias, withBias): packed[octet panels] = (raw - center) * scale[row]; bias = f32(sum of squares) or untouched
  mod.func('pack', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'], [], (b, raw, dp, m, center, scale, packed, bias, withBias) => {
    const i = b.local('i32');
    const f = b.local('i32');
    const rp = b.local('i32');
    const pp = b.local('i32');
    const sc = b.local('v128');
    const v = b.local('v128');
    const y = b.local('v128');
    const acc = b.local('v128');
    b.for(i, () => b.i32(0), m, 1, () => {
      b.get(raw).get(i).get(dp).op(Op.i32_mul).i32(2).op(Op.i32_shl).op(Op.i32_add).set(rp);
      // pp = packed + (i >> 3) * dp * 32 + (i & 7) * 4
      b.get(packed).get(i).i32(3).op(Op.i32_shr_u).get(dp).op(Op.i32_mul).i32(5).op(Op.i32_shl).op(Op.i32_add);
      b.get(i).i32(7).op(Op.i32_and).i32(2).op(Op.i32_shl).op(Op.i32_add).set(pp);
      b.get(scale).get(i).i32(2).op(Op.i32_shl).op(Op.i32_add).loadSplat().set(sc);
      b.f64(0).simd(Simd.f64x2_splat).set(acc);
      b.for(f, () => b.i32(0), dp, 4, () => {
        b.get(rp).v128Load().get(center).get(f).i32(2).op(Op.i32_shl).op(Op.i32_add).v128Load().simd(Simd.f32x4_sub).get(sc).simd(Simd.f32x4_mul).set(v);
        for (let lane = 0; lane < 4; lane++) b.get(pp).get(v).storeLane(lane * 32, lane);
        b.get(v).simd(Simd.f64x2_promote_low_f32x4).tee(y).get(y).simd(Simd.f64x2_mul).get(acc).simd(Simd.f64x2_add).set(acc);
        b.get(v).get(v).simd(0x0d, ...HIGH_TO_LOW).simd(Simd.f64x2_promote_low_f32x4).tee(y).get(y).simd(Simd.f64x2_mul).get(acc).simd(Simd.f64x2_add).set(acc);
        b.get(rp).i32(16).op(Op.i32_add).set(rp);
        b.get(pp).i32(128).op(Op.i32_add).set(pp);
      });
      b.get(withBias).if(() => {
        b.get(bias).get(i).i32(2).op(Op.i32_shl).op(Op.i32_add);
        b.get(acc).simd(Simd.f64x2_extract_lane, 0).get(acc).simd(Simd.f64x2_extract_lane, 1).op(Op.f64_add).op(Op.f32_demote_f64).f32Store();
      });
    });
  });
}


function emitRefine(mod: ModuleBuilder, fname: 'sqdist' | 'dot'): void {
  // f(qraw, rraw, dp, rows, li, lstride, cc, out): out[r * cc + t] = f64 (squared distance | dot) of query row r and reference row li[r * lstride + t]; dp % 4 == 0
  mod.func(fname, ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'], [], (b, qraw, rraw, dp, rows, li, lstride, cc, out) => {
    const r = b.local('i32');
    const t = b.local('i32');
    const qp = b.local('i32');
    const rp = b.local('i32');
    const end = b.local('i32');
    const rowBytes = b.local('i32');
    const slot = b.local('i32');
    const x = b.local('v128');
    const y = b.local('v128');
    const z = b.local('v128');
    const acc0 = b.local('v128');
    const acc1 = b.local('v128');
    b.get(dp).i32(2).op(Op.i32_shl).set(rowBytes);
    b.for(r, () => b.i32(0), rows, 1, () => {
      b.for(t, () => b.i32(0), cc, 1, () => {
        b.get(rraw).get(li).get(r).get(lstride).op(Op.i32_mul).get(t).op(Op.i32_add).i32(2).op(Op.i32_shl).op(Op.i32_add).i32Load().get(rowBytes).op(Op.i32_mul).op(Op.i32_add).set(rp);
        b.get(r).get(cc).op(Op.i32_mul).get(t).op(Op.i32_add).set(slot);
        b.get(qraw).get(r).get(rowBytes).op(Op.i32_mul).op(Op.i32_add).tee(qp).get(rowBytes).op(Op.i32_add).set(end);
        b.f64(0).simd(Simd.f64x2_splat).tee(acc0).set(acc1);
        {
          b.loop(() => {
            if (fname === 'sqdist') {
              // float64 differences of the float32 coordinates are exact, as in pointDistance
              b.get(qp).v128Load().set(x);
              b.get(rp).v128Load().set(y);
              b.get(x).simd(Simd.f64x2_promote_low_f32x4).get(y).simd(Simd.f64x2_promote_low_f32x4).simd(Simd.f64x2_sub).tee(z);
              b.get(z).simd(Simd.f64x2_mul).get(acc0).simd(Simd.f64x2_add).set(acc0);
              b.get(x).get(x).simd(0x0d, ...HIGH_TO_LOW).simd(Simd.f64x2_promote_low_f32x4);
              b.get(y).get(y).simd(0x0d, ...HIGH_TO_LOW).simd(Simd.f64x2_promote_low_f32x4).simd(Simd.f64x2_sub).tee(z);
              b.get(z).simd(Simd.f64x2_mul).get(acc1).simd(Simd.f64x2_add).set(acc1);
            } else {
              b.get(qp).v128Load().set(x);
              b.get(rp).v128Load().set(y);
              b.get(x).simd(Simd.f64x2_promote_low_f32x4).get(y).simd(Simd.f64x2_promote_low_f32x4).simd(Simd.f64x2_mul).get(acc0).simd(Simd.f64x2_add).set(acc0);
              b.get(x).get(x).simd(0x0d, ...HIGH_TO_LOW).simd(Simd.f64x2_promote_low_f32x4);
              b.get(y).get(y).simd(0x0d, ...HIGH_TO_LOW).simd(Simd.f64x2_promote_low_f32x4).simd(Simd.f64x2_mul).get(acc1).simd(Simd.f64x2_add).set(acc1);
            }
            b.get(rp).i32(16).op(Op.i32_add).set(rp);
            b.get(qp).i32(16).op(Op.i32_add).tee(qp).get(end).op(Op.i32_lt_u).brIf(0);
          });
        }
        b.get(out).get(slot).i32(3).op(Op.i32_shl).op(Op.i32_add);
        b.get(acc0).get(acc1).simd(Simd.f64x2_add).tee(acc0).simd(Simd.f64x2_extract_lane, 0);
        b.get(acc0).simd(Simd.f64x2_extract_lane, 1).op(Op.f64_add).f64Store();
      });
    });
  });
}

/** Module bytes, importing a memory of 1 to 65536 pages (4 GiB). */
export function kernelModuleBytes(shared: boolean, fma: boolean): Uint8Array {
  const mod = new ModuleBuilder({ initialPages: 1, maximumPages: 65536, shared });
  const compact = emitCompact(mod);
  const cut = emitCut(mod, compact);
  emitGemm(mod, fma);
  emitGemm(mod, fma, true);
  emitRowscan(mod, cut);
  emitColscan(mod, cut);
  emitFinish(mod, compact);
  emitSeed(mod);
  emitPack(mod);
  emitColsum(mod);
  emitDenseIo(mod);
  emitPanelOps(mod);
  emitAdamw(mod);
  emitAdamw(mod, true);
  emitRefine(mod, 'sqdist');
  emitRefine(mod, 'dot');
  return mod.encode();
}

/** The exported kernels (all void; pointers are byte offsets). */
export interface KernelExports {
  gemm(a: number, b: number, quads: number, octs: number, K: number, c: number, ldc: number): void;
  gemmx(a: number, b: number, quads: number, octs: number, K: number, c: number, ldc: number, ldj: number): void;
  epi(src: number, panels: number, m: number, bias: number, mask: number, relu: number, dst: number): void;
  stripsum(src: number, panels: number, rows: number, dst: number): void;
  strips(src: number, rows: number, cols: number, dstRows: number, dst: number): void;
  adamw(p: number, m: number, v: number, g: number, n: number, beta1: number, c1: number, beta2: number, c2: number, invSqrtC2: number, eps: number, stepSize: number, shrink: number): void;
  /** adamw with the gradient summed (float64, in order) over `gCount` vectors `gStride` bytes apart, starting at g. */
  adamwsum(p: number, m: number, v: number, g: number, n: number, beta1: number, c1: number, beta2: number, c2: number, invSqrtC2: number, eps: number, stepSize: number, shrink: number, gStride: number, gCount: number): void;
  compact(S: number, I: number, count: number, cc: number, thrS: number, thrI: number): void;
  cut(S: number, I: number, count: number, cc: number, slack: number, thrS: number, thrI: number): number;
  rowscan(c: number, ldc: number, rows: number, groups: number, bias: number, alpha: number, colBase: number, self: number, ls: number, li: number, cnt: number, thrS: number, thrI: number, cap: number, cc: number): void;
  colscan(c: number, ldc: number, rows: number, groups: number, biasRows: number, alpha: number, rowBase: number, ls: number, li: number, cnt: number, thrS: number, thrI: number, cap: number, cc: number): void;
  seed(c: number, ldc: number, rows: number, groups: number, bias: number, alpha: number, colBase: number, self: number, thrS: number, thrI: number, need: number, slack: number, scratch: number): void;
  finish(ls: number, li: number, cnt: number, thrS: number, thrI: number, rows: number, cap: number, cc: number): void;
  pack(raw: number, dp: number, m: number, center: number, scale: number, packed: number, bias: number, withBias: number): void;
  colsum(raw: number, dp: number, m: number, out: number): void;
  pixelpack(src: number, count: number, K: number, scale: number, shift: number, dst: number): void;
  biasrelu(c: number, ldc: number, count: number, N: number, bias: number, relu: number, dst: number): void;
  sqdist(qraw: number, rraw: number, dp: number, rows: number, li: number, lstride: number, cc: number, out: number): void;
  dot(qraw: number, rraw: number, dp: number, rows: number, li: number, lstride: number, cc: number, out: number): void;
}

let fmaSupport: boolean | null = null;

/**
 * Whether this engine compiles relaxed-SIMD fused multiply-add (about 1.2x
 * the GEMM rate of separate mul + add here). Node 22+ has it on by default;
 * Node 20's V8 (11.3) has it behind --experimental-wasm-relaxed-simd, which
 * is switched on here for modules compiled afterwards (it only adds
 * instructions to the validator). FMA rounds once instead of twice, so
 * results can differ from the non-FMA kernels in the last bit, never between
 * threads of one process.
 */
export function fmaAvailable(): boolean {
  if (fmaSupport !== null) return fmaSupport;
  const probe = kernelModuleBytes(false, true);
  if (!WA.validate(probe) && process.env.CBF_NO_RELAXED_SIMD !== '1') {
    try {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // flags are best effort
    }
  }
  const ok = process.env.CBF_NO_RELAXED_SIMD !== '1' && WA.validate(probe);
  fmaSupport = ok;
  return ok;
}

const compiled = new Map<string, object>();

/** Instantiate the kernels on `memory` (shared or not); modules are compiled once per thread. */
export function instantiateKernels(memory: WasmMemory, shared: boolean, fma: boolean): KernelExports {
  if (fma && !fmaAvailable()) throw new Error('relaxed-SIMD fused multiply-add is not available in this engine');
  const key = `${shared}/${fma}`;
  let module = compiled.get(key);
  if (!module) {
    module = new WA.Module(kernelModuleBytes(shared, fma));
    compiled.set(key, module);
  }
  const instance = new WA.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}

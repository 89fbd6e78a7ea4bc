/**
 * A minimal WebAssembly binary emitter: enough to write the few SIMD kernels
 * of the neighbour search (./kernels.ts) without a toolchain. No wasm
 * compiler ships with this project and Node has no text-format assembler, so
 * the kernels are emitted as bytes at start-up (a few kB, microseconds).
 *
 * Only what the kernels use is here: i32/f32/f64/v128 locals, structured
 * control flow, loads/stores with a constant offset, and the listed opcodes.
 * One imported memory (optionally shared, so worker threads can run the same
 * kernels on one heap).
 */

export type ValType = 'i32' | 'f32' | 'f64' | 'v128';

const VAL: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/** Scalar opcodes (single byte). */
export const Op = {
  unreachable: 0x00,
  drop: 0x1a,
  select: 0x1b,
  return: 0x0f,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_s: 0x4c,
  i32_ge_s: 0x4e,
  f32_eq: 0x5b,
  f32_lt: 0x5d,
  f32_gt: 0x5e,
  f32_ge: 0x60,
  f32_le: 0x5f,
  f64_eq: 0x61,
  f64_lt: 0x63,
  f64_gt: 0x64,
  f64_le: 0x65,
  i32_ctz: 0x68,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_shl: 0x74,
  i32_shr_u: 0x76,
  f32_add: 0x92,
  f32_sub: 0x93,
  f32_mul: 0x94,
  f64_sqrt: 0x9f,
  f64_add: 0xa0,
  f64_sub: 0xa1,
  f64_mul: 0xa2,
  f64_div: 0xa3,
  f32_demote_f64: 0xb6,
  f64_convert_i32_u: 0xb8,
  f64_promote_f32: 0xbb,
} as const;

/** SIMD opcodes (0xfd prefix, LEB128 sub-opcode). */
export const Simd = {
  v128_load: 0,
  v128_load32_splat: 9,
  v128_store: 11,
  i32x4_splat: 0x11,
  f32x4_splat: 0x13,
  i32x4_extract_lane: 0x1b,
  f64x2_splat: 0x14,
  f32x4_extract_lane: 0x1f,
  f64x2_extract_lane: 0x21,
  f32x4_lt: 0x43,
  f32x4_le: 0x45,
  v128_or: 0x50,
  v128_any_true: 0x53,
  v128_store32_lane: 0x5a,
  f64x2_promote_low_f32x4: 0x5f,
  i32x4_bitmask: 0xa4,
  f32x4_add: 0xe4,
  f32x4_sub: 0xe5,
  f32x4_mul: 0xe6,
  f32x4_pmin: 0xea,
  f32x4_pmax: 0xeb,
  i32x4_add: 0xae,
  i32x4_sub: 0xb1,
  f64x2_add: 0xf0,
  f64x2_sub: 0xf1,
  f64x2_mul: 0xf2,
} as const;

function uleb(out: number[], v: number): void {
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

function sleb(out: number[], v: number): void {
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

function name(out: number[], s: string): void {
  const bytes = new TextEncoder().encode(s);
  uleb(out, bytes.length);
  out.push(...bytes);
}

/** A local variable (parameters are locals 0..p-1). */
export interface Local {
  readonly index: number;
  readonly type: ValType;
}

/** Instruction stream of one function body. Memory accesses take byte offsets (the address operand is on the stack). */
export class Body {
  readonly code: number[] = [];
  private readonly extra: ValType[] = [];

  constructor(private readonly paramCount: number) {}

  /** Declare a new local of `type` (zero-initialised). */
  local(type: ValType): Local {
    this.extra.push(type);
    return { index: this.paramCount + this.extra.length - 1, type };
  }

  get(l: Local): this {
    this.code.push(0x20);
    uleb(this.code, l.index);
    return this;
  }
  set(l: Local): this {
    this.code.push(0x21);
    uleb(this.code, l.index);
    return this;
  }
  tee(l: Local): this {
    this.code.push(0x22);
    uleb(this.code, l.index);
    return this;
  }
  i32(v: number): this {
    this.code.push(0x41);
    sleb(this.code, v | 0);
    return this;
  }
  f32(v: number): this {
    this.code.push(0x43);
    this.code.push(...new Uint8Array(Float32Array.of(v).buffer));
    return this;
  }
  f64(v: number): this {
    this.code.push(0x44);
    this.code.push(...new Uint8Array(Float64Array.of(v).buffer));
    return this;
  }
  op(...ops: number[]): this {
    this.code.push(...ops);
    return this;
  }
  simd(op: number, ...immediates: number[]): this {
    this.code.push(0xfd);
    uleb(this.code, op);
    this.code.push(...immediates);
    return this;
  }
  /** memarg: alignment exponent, constant byte offset. */
  private mem(opcode: number, align: number, offset: number, simd = false): this {
    if (simd) {
      this.code.push(0xfd);
      uleb(this.code, opcode);
    } else this.code.push(opcode);
    uleb(this.code, align);
    uleb(this.code, offset);
    return this;
  }
  i32Load(offset = 0): this {
    return this.mem(0x28, 2, offset);
  }
  i32Load8u(offset = 0): this {
    return this.mem(0x2d, 0, offset);
  }
  f32Load(offset = 0): this {
    return this.mem(0x2a, 2, offset);
  }
  f64Load(offset = 0): this {
    return this.mem(0x2b, 3, offset);
  }
  i32Store(offset = 0): this {
    return this.mem(0x36, 2, offset);
  }
  f32Store(offset = 0): this {
    return this.mem(0x38, 2, offset);
  }
  f64Store(offset = 0): this {
    return this.mem(0x39, 3, offset);
  }
  v128Load(offset = 0): this {
    return this.mem(Simd.v128_load, 4, offset, true);
  }
  v128Store(offset = 0): this {
    return this.mem(Simd.v128_store, 4, offset, true);
  }
  /** v128.store32_lane: address, vector on the stack. */
  storeLane(offset: number, lane: number): this {
    this.mem(Simd.v128_store32_lane, 2, offset, true);
    this.code.push(lane);
    return this;
  }
  loadSplat(offset = 0): this {
    return this.mem(Simd.v128_load32_splat, 2, offset, true);
  }

  block(body: () => void): this {
    this.code.push(0x02, 0x40);
    body();
    this.code.push(0x0b);
    return this;
  }
  loop(body: () => void): this {
    this.code.push(0x03, 0x40);
    body();
    this.code.push(0x0b);
    return this;
  }
  /** if (top of stack != 0) then [else]. */
  if(then: () => void, otherwise?: () => void): this {
    this.code.push(0x04, 0x40);
    then();
    if (otherwise) {
      this.code.push(0x05);
      otherwise();
    }
    this.code.push(0x0b);
    return this;
  }
  /** Call function `index` (module order of `func` calls). */
  call(index: number): this {
    this.code.push(0x10);
    uleb(this.code, index);
    return this;
  }
  br(depth: number): this {
    this.code.push(0x0c);
    uleb(this.code, depth);
    return this;
  }
  brIf(depth: number): this {
    this.code.push(0x0d);
    uleb(this.code, depth);
    return this;
  }

  /**
   * for (i = start; i < end; i += step) body — i32 locals; `start`/`end`
   * are emitters pushing one i32. Inside `body`, depth 0 is the loop
   * (continue needs the increment, so use `brIf(1)` only to break).
   */
  for(i: Local, start: () => void, end: Local, step: number, body: () => void): this {
    start();
    this.set(i);
    this.block(() => {
      this.get(i).get(end).op(Op.i32_ge_s).brIf(0);
      this.loop(() => {
        body();
        this.get(i).i32(step).op(Op.i32_add).tee(i).get(end).op(Op.i32_lt_s).brIf(0);
      });
    });
    return this;
  }

  /** Encoded locals declaration + code + end. */
  encode(): number[] {
    const out: number[] = [];
    // run-length encode consecutive equal types
    const groups: [number, ValType][] = [];
    for (const t of this.extra) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    uleb(out, groups.length);
    for (const [count, t] of groups) {
      uleb(out, count);
      out.push(VAL[t]);
    }
    out.push(...this.code, 0x0b);
    const sized: number[] = [];
    uleb(sized, out.length);
    return sized.concat(out);
  }
}

interface FunctionDef {
  name: string;
  params: ValType[];
  results: ValType[];
  body: Body;
}

/** A module importing one memory (`env.memory`) and exporting functions. */
export class ModuleBuilder {
  private readonly funcs: FunctionDef[] = [];

  /** Index the next `func` will get. */
  get nextIndex(): number {
    return this.funcs.length;
  }

  constructor(private readonly memory: { initialPages: number; maximumPages: number; shared: boolean }) {}

  /** Add an exported function; `build` receives the body and the parameter locals. */
  func(fname: string, params: ValType[], results: ValType[], build: (b: Body, ...args: Local[]) => void): this {
    const body = new Body(params.length);
    build(body, ...params.map((type, index) => ({ index, type })));
    this.funcs.push({ name: fname, params, results, body });
    return this;
  }

  encode(): Uint8Array {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, content: number[]) => {
      out.push(id);
      uleb(out, content.length);
      out.push(...content);
    };
    const types: number[] = [];
    uleb(types, this.funcs.length);
    for (const f of this.funcs) {
      types.push(0x60);
      uleb(types, f.params.length);
      for (const p of f.params) types.push(VAL[p]);
      uleb(types, f.results.length);
      for (const r of f.results) types.push(VAL[r]);
    }
    section(1, types);
    const imports: number[] = [1];
    name(imports, 'env');
    name(imports, 'memory');
    imports.push(0x02, this.memory.shared ? 0x03 : 0x01);
    uleb(imports, this.memory.initialPages);
    uleb(imports, this.memory.maximumPages);
    section(2, imports);
    const fsec: number[] = [];
    uleb(fsec, this.funcs.length);
    this.funcs.forEach((_, i) => uleb(fsec, i));
    section(3, fsec);
    const exports: number[] = [];
    uleb(exports, this.funcs.length);
    this.funcs.forEach((f, i) => {
      name(exports, f.name);
      exports.push(0x00);
      uleb(exports, i);
    });
    section(7, exports);
    const code: number[] = [];
    uleb(code, this.funcs.length);
    for (const f of this.funcs) code.push(...f.body.encode());
    section(10, code);
    return Uint8Array.from(out);
  }
}

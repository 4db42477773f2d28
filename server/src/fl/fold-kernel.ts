/**
 * The report fold as one WebAssembly SIMD pass (issue 14 part 9; measured by bench/aggregation.ts).
 *
 * `FoldKernel` owns one WebAssembly memory holding two float64 running sums (A and B) and a
 * float32 scratch for the incoming delta. `fold(x, w, bound)` copies the delta into the scratch
 * (one memcpy), then in a single SIMD pass checks every value's magnitude bits against `bound`
 * and writes `other = current + w * x`. Only when no value failed does `other` become current: a
 * refused delta leaves the sum bit-for-bit unchanged, without a separate read-only check pass.
 * Arithmetic is the same as the scalar loop `s[i] += w * x[i]` in float64 (promote, multiply,
 * add), so results are identical to it.
 *
 * Contract of `bound`: the bit pattern of a non-negative float32 b; a delta passes when every
 * |x[i]| <= b and no x[i] is NaN (NaN's bits, masked, exceed every finite pattern). `NO_BOUND`
 * (0x7fffffff) lets everything through (callers that checked already).
 *
 * Where WebAssembly SIMD is unavailable the same contract is met by a scalar JavaScript loop.
 */

/** Signed LEB128 (i32.const immediates). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}
const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const simd = (op: number) => [0xfd, ...uleb(op)];
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
const i32 = (n: number) => [0x41, ...sleb(n)];
const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

// SIMD opcodes (WebAssembly 128-bit SIMD): memory, splats, bitwise, compare, f64x2 arithmetic.
const V128_LOAD = 0, V128_LOAD64_ZERO = 93, V128_STORE = 11;
const I32X4_SPLAT = 17, F64X2_SPLAT = 20, V128_AND = 78, V128_OR = 80, V128_ANY_TRUE = 83, I32X4_GT_U = 60;
const F64X2_PROMOTE_LOW_F32X4 = 95, F64X2_ADD = 240, F64X2_MUL = 242;

/**
 * (func $fold (param $dst i32) (param $src i32) (param $x i32) (param $n i32) (param $w f64) (param $bound i32) (result i32))
 * $n: floats, a multiple of 4. Returns 1 when some |x| exceeded $bound (then $dst is garbage, $src untouched), else 0.
 * Locals: 6 $end, 7 $wv (w,w), 8 $bv (bound x4), 9 $abs (0x7fffffff x4), 10 $bad (or of lane masks).
 */
function foldModuleBytes(): Uint8Array<ArrayBuffer> {
  const [DST, SRC, X, N, W, BOUND, END, WV, BV, ABS, BAD] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const half = (off: number) => [
    ...get(DST), ...get(SRC), ...simd(V128_LOAD), 4, 2 * off,
    ...get(X), ...simd(V128_LOAD64_ZERO), 3, off, ...simd(F64X2_PROMOTE_LOW_F32X4),
    ...get(WV), ...simd(F64X2_MUL), ...simd(F64X2_ADD),
    ...simd(V128_STORE), 4, 2 * off,
  ];
  const code = [
    ...get(W), ...simd(F64X2_SPLAT), ...set(WV),
    ...get(BOUND), ...simd(I32X4_SPLAT), ...set(BV),
    ...i32(0x7fffffff), ...simd(I32X4_SPLAT), ...set(ABS),
    ...get(X), ...get(N), ...i32(2), 0x74 /* i32.shl */, 0x6a /* i32.add */, ...set(END),
    0x02, 0x40, 0x03, 0x40, // block, loop
    ...get(X), ...get(END), 0x4f /* i32.ge_u */, 0x0d, 1, // br_if out
    ...get(BAD), ...get(X), ...simd(V128_LOAD), 4, 0, ...get(ABS), ...simd(V128_AND), ...get(BV), ...simd(I32X4_GT_U), ...simd(V128_OR), ...set(BAD),
    ...half(0),
    ...half(8),
    ...get(DST), ...i32(32), 0x6a, ...set(DST),
    ...get(SRC), ...i32(32), 0x6a, ...set(SRC),
    ...get(X), ...i32(16), 0x6a, ...set(X),
    0x0c, 0, // br loop
    0x0b, 0x0b, // end loop, end block
    ...get(BAD), ...simd(V128_ANY_TRUE),
    0x0b, // end func
  ];
  const body = [2, 1, 0x7f, 4, 0x7b, ...code]; // locals: 1 i32, 4 v128 ($bad starts at zero)
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 6, 0x7f, 0x7f, 0x7f, 0x7f, 0x7c, 0x7f, 1, 0x7f]), // type: (i32 i32 i32 i32 f64 i32) -> i32
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x00, 1]), // import env.mem, min 1 page
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('fold'), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;
function foldModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = foldModuleBytes();
    compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** Lets every value through (the magnitude bits of any float32, NaN included, are <= this). */
export const NO_BOUND = 0x7fffffff;

/** Bit pattern of the largest float32 <= b (b >= 0), for `fold`'s bound. */
export function boundBits(b: number): number {
  if (!(b > 0)) return 0;
  const f = new Float32Array([Math.min(b, 3.4028234663852886e38)]);
  const bits = new Uint32Array(f.buffer);
  if (f[0] > b) bits[0] -= 1; // rounded up: step back one float32
  return bits[0];
}

type FoldFn = (dst: number, src: number, x: number, n: number, w: number, bound: number) => number;

export class FoldKernel {
  private readonly fn: FoldFn | null;
  private readonly sums: [Float64Array, Float64Array];
  private readonly offsets: [number, number];
  private readonly scratch: Float32Array;
  private readonly scratchOffset: number;
  private readonly padded: number;
  private current = 0;

  constructor(readonly length: number) {
    const padded = (this.padded = Math.ceil(length / 4) * 4);
    const mod = foldModule();
    if (mod) {
      const bytes = 8 * padded * 2 + 4 * padded;
      const mem = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / 65536)) });
      this.fn = new WebAssembly.Instance(mod, { env: { mem } }).exports.fold as FoldFn;
      this.offsets = [0, 8 * padded];
      this.scratchOffset = 16 * padded;
      this.sums = [new Float64Array(mem.buffer, 0, length), new Float64Array(mem.buffer, 8 * padded, length)];
      this.scratch = new Float32Array(mem.buffer, this.scratchOffset, padded); // tail past `length` stays 0
    } else {
      this.fn = null;
      this.offsets = [0, 0];
      this.scratchOffset = 0;
      this.sums = [new Float64Array(length), new Float64Array(length)];
      this.scratch = new Float32Array(0);
    }
  }

  /** The running sum (float64, `length` values). A later `fold` may move it: read it, do not keep it. */
  get sum(): Float64Array {
    return this.sums[this.current];
  }

  /** sum += w * x, unless some |x[i]| exceeds the float32 whose bits are `bound` (or is NaN): then false and nothing changed. */
  fold(x: Float32Array, w: number, bound: number): boolean {
    if (x.length !== this.length) throw new RangeError(`update length ${x.length} != ${this.length}`);
    const next = 1 - this.current;
    if (this.fn) {
      this.scratch.set(x);
      if (this.fn(this.offsets[next], this.offsets[this.current], this.scratchOffset, this.padded, w, bound) !== 0) return false;
    } else if (!scalarFold(this.sums[next], this.sums[this.current], x, w, bound)) return false;
    this.current = next;
    return true;
  }
}

/** Whether every value of `x` passes `bound` (see FoldKernel.fold), by a scalar read of its bits. */
export function withinBound(x: Float32Array, bound: number): boolean {
  if (bound === NO_BOUND) return true;
  const bits = new Int32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7fffffff) > bound) return false;
  return true;
}

/** The same contract in JavaScript: check first (nothing written on failure), then dst = src + w * x. */
function scalarFold(dst: Float64Array, src: Float64Array, x: Float32Array, w: number, bound: number): boolean {
  if (!withinBound(x, bound)) return false;
  for (let i = 0; i < x.length; i++) dst[i] = src[i] + w * x[i];
  return true;
}

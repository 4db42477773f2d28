/**
 * The report fold as WebAssembly SIMD passes over cache-sized blocks (issue 14 part 9; measured by
 * bench/aggregation.ts).
 *
 * `FoldKernel` owns one WebAssembly memory holding the float64 running sum and a small float32
 * scratch (BLOCK floats, 16 KiB: it stays in the L1/L2 cache). WebAssembly cannot read the frame
 * in place, so the delta is copied in block by block (a memcpy into the cache-resident scratch).
 * `fold(x, w, bound)` makes two passes over the blocks: first a SIMD check of every value's
 * magnitude bits against `bound`, stopping at the first failing block with nothing written; then,
 * only when all passed, a SIMD `sum += w * x` in place. The sum is read and written once per
 * report and never copied (no second sum, no full-size scratch): 8 bytes per parameter plus the
 * 16 KiB scratch. The delta is read twice, the second time mostly from cache; a refused delta
 * leaves the sum bit-for-bit unchanged.
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

/** A loop over $x in steps of `step` bytes up to $end (locals $x, $end), with `body` inside. */
const loop = (x: number, end: number, step: number, body: number[]) => [
  0x02, 0x40, 0x03, 0x40, // block, loop
  ...get(x), ...get(end), 0x4f /* i32.ge_u */, 0x0d, 1, // br_if out
  ...body,
  ...get(x), ...i32(step), 0x6a, ...set(x),
  0x0c, 0, // br loop
  0x0b, 0x0b, // end loop, end block
];
/** $end = $x + 4 * $n */
const endOf = (x: number, n: number, end: number) => [...get(x), ...get(n), ...i32(2), 0x74 /* i32.shl */, 0x6a /* i32.add */, ...set(end)];

/**
 * (func $fold (param $dst i32) (param $x i32) (param $n i32) (param $w f64)): $dst[i] += $w * $x[i]
 * for $n floats (a multiple of 4) of float32 $x into float64 $dst, in place. Locals: 4 $end, 5 $wv (w,w).
 * (func $check (param $x i32) (param $n i32) (param $bound i32) (result i32)): 1 when some
 * |$x[i]|'s bits exceed $bound (NaN included), else 0. Locals: 3 $end, 4 $bv, 5 $abs, 6 $bad.
 */
function foldModuleBytes(): Uint8Array<ArrayBuffer> {
  const [DST, X, N, W, END, WV] = [0, 1, 2, 3, 4, 5];
  const half = (off: number) => [
    ...get(DST), ...get(DST), ...simd(V128_LOAD), 4, 2 * off,
    ...get(X), ...simd(V128_LOAD64_ZERO), 3, off, ...simd(F64X2_PROMOTE_LOW_F32X4),
    ...get(WV), ...simd(F64X2_MUL), ...simd(F64X2_ADD),
    ...simd(V128_STORE), 4, 2 * off,
  ];
  const fold = [
    2, 1, 0x7f, 1, 0x7b, // locals: 1 i32, 1 v128
    ...get(W), ...simd(F64X2_SPLAT), ...set(WV),
    ...endOf(X, N, END),
    ...loop(X, END, 16, [...half(0), ...half(8), ...get(DST), ...i32(32), 0x6a, ...set(DST)]),
    0x0b,
  ];
  const [CX, CN, CBOUND, CEND, BV, ABS, BAD] = [0, 1, 2, 3, 4, 5, 6];
  const check = [
    2, 1, 0x7f, 3, 0x7b, // locals: 1 i32, 3 v128 ($bad starts at zero)
    ...get(CBOUND), ...simd(I32X4_SPLAT), ...set(BV),
    ...i32(0x7fffffff), ...simd(I32X4_SPLAT), ...set(ABS),
    ...endOf(CX, CN, CEND),
    ...loop(CX, CEND, 16, [...get(BAD), ...get(CX), ...simd(V128_LOAD), 4, 0, ...get(ABS), ...simd(V128_AND), ...get(BV), ...simd(I32X4_GT_U), ...simd(V128_OR), ...set(BAD)]),
    ...get(BAD), ...simd(V128_ANY_TRUE),
    0x0b,
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    // types: 0 (i32 i32 i32 f64) -> (), 1 (i32 i32 i32) -> i32
    ...section(1, [2, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7c, 0, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f]),
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x00, 1]), // import env.mem, min 1 page
    ...section(3, [2, 0, 1]),
    ...section(7, [2, ...name('fold'), 0x00, 0, ...name('check'), 0x00, 1]),
    ...section(10, [2, ...uleb(fold.length), ...fold, ...uleb(check.length), ...check]),
  ]);
}

/** Floats per block of the copy-in (a multiple of 4): 16 KiB of scratch. */
export const BLOCK = 4096;

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

type Exports = { fold(dst: number, x: number, n: number, w: number): void; check(x: number, n: number, bound: number): number };

export class FoldKernel {
  private readonly fn: Exports | null;
  /** The running sum: `length` float64 values (in the kernel's memory when it has one). */
  readonly sum: Float64Array;
  private readonly scratch: Float32Array;
  private readonly scratchOffset: number;

  constructor(readonly length: number) {
    const mod = foldModule();
    if (mod) {
      const padded = Math.ceil(length / 4) * 4;
      const mem = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil((8 * padded + 4 * BLOCK) / 65536)) });
      this.fn = new WebAssembly.Instance(mod, { env: { mem } }).exports as unknown as Exports;
      this.sum = new Float64Array(mem.buffer, 0, length);
      this.scratchOffset = 8 * padded;
      this.scratch = new Float32Array(mem.buffer, this.scratchOffset, BLOCK);
      // Touch every page now (a new memory is mapped lazily): the first reports of a round then
      // fold at full speed instead of paying the page faults of the sum.
      new Uint8Array(mem.buffer).fill(0);
    } else {
      this.fn = null;
      this.sum = new Float64Array(length);
      this.scratch = new Float32Array(0);
      this.scratchOffset = 0;
    }
  }

  /** sum += w * x, unless some |x[i]| exceeds the float32 whose bits are `bound` (or is NaN): then false and nothing changed. */
  fold(x: Float32Array, w: number, bound: number): boolean {
    if (x.length !== this.length) throw new RangeError(`update length ${x.length} != ${this.length}`);
    const fn = this.fn;
    if (!fn) return scalarFold(this.sum, x, w, bound);
    // Pass 1 (skipped without a bound): every block checked before anything is written.
    if (bound !== NO_BOUND) for (let at = 0; at < this.length; at += BLOCK) if (fn.check(this.scratchOffset, this.copyIn(x, at), bound) !== 0) return false;
    // Pass 2: the sum updated in place, block by block, last block first: the blocks pass 1 read
    // last are the ones most likely still in cache.
    for (let at = Math.floor((this.length - 1) / BLOCK) * BLOCK; at >= 0; at -= BLOCK) fn.fold(8 * at, this.scratchOffset, this.copyIn(x, at), w);
    return true;
  }

  /** Copies x[at, at + BLOCK) into the scratch, zero-padded to whole lanes (0 passes every bound and adds 0); returns the float count. */
  private copyIn(x: Float32Array, at: number): number {
    const n = Math.min(BLOCK, this.length - at);
    this.scratch.set(x.subarray(at, at + n));
    const n4 = Math.ceil(n / 4) * 4;
    if (n4 > n) this.scratch.fill(0, n, n4);
    return n4;
  }
}

/** Whether every value of `x` passes `bound` (see FoldKernel.fold), by a scalar read of its bits. */
export function withinBound(x: Float32Array, bound: number): boolean {
  if (bound === NO_BOUND) return true;
  const bits = new Int32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7fffffff) > bound) return false;
  return true;
}

/** The same contract in JavaScript: check first (nothing written on failure), then sum += w * x. */
function scalarFold(sum: Float64Array, x: Float32Array, w: number, bound: number): boolean {
  if (!withinBound(x, bound)) return false;
  for (let i = 0; i < x.length; i++) sum[i] += w * x[i];
  return true;
}

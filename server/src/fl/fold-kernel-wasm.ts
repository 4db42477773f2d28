/**
 * The WebAssembly source of the fold kernel (fold-kernel.ts), assembled here byte by byte (no
 * toolchain needed at build or run time). The module imports one memory (`env.mem`) and exports:
 *
 * - `check(x, n, bound) -> i32`: 1 when some |x[i]|'s bits exceed `bound` (NaN included: its
 *   masked bits exceed every finite pattern), else 0, for `n` float32 at byte address `x`
 *   (n a multiple of 16). Magnitude bits as unsigned i32x4 lanes, max-reduced, compared once.
 * - `fold1` .. `fold8` (FOLD_MAX): `foldK(dst, n, x_0 .. x_{K-1}, w_0 .. w_{K-1})` does, for every
 *   i < n (a multiple of 4), `s = dst[i]; s += w_0 * x_0[i]; ...; s += w_{K-1} * x_{K-1}[i];
 *   dst[i] = s` with float64 `dst` and float32 `x_j` (promoted), f64x2 lanes, no fused
 *   multiply-add: per element exactly the float64 operations of K scalar loops
 *   `dst[i] += w_j * x_j[i]` run one after the other, in the same order, so the result is bit
 *   for bit theirs; the sum is read and written once for all K reports.
 */

/** The most reports one fold call takes. */
export const FOLD_MAX = 8;
/** f64x2 pairs (2 floats each) per step of a fold loop (4 and 8 measured no faster on a busy machine). */
const UNROLL = 2;

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
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const simd = (op: number) => [0xfd, ...uleb(op)];
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32 = (n: number) => [0x41, ...sleb(n)];
const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;
const I32_ADD = 0x6a, I32_SHL = 0x74, I32_GE_U = 0x4f;

// SIMD opcodes (WebAssembly 128-bit SIMD): memory, splats, bitwise, compare, f64x2 arithmetic.
const V128_LOAD = 0, V128_LOAD64_ZERO = 93, V128_STORE = 11;
const I32X4_SPLAT = 17, F64X2_SPLAT = 20, V128_AND = 78, V128_ANY_TRUE = 83, I32X4_GT_U = 60, I32X4_MAX_U = 185;
const F64X2_PROMOTE_LOW_F32X4 = 95, F64X2_ADD = 240, F64X2_MUL = 242;

/** A loop over local `x` in steps of `step` up to local `end`, with `body` inside. */
const loop = (x: number, end: number, step: number, body: number[]) => [
  0x02, 0x40, 0x03, 0x40, // block, loop
  ...get(x), ...get(end), I32_GE_U, 0x0d, 1, // br_if out
  ...body,
  ...get(x), ...i32(step), I32_ADD, ...set(x),
  0x0c, 0, // br loop
  0x0b, 0x0b, // end loop, end block
];

/**
 * Body of `check(x, n, bound)`, n a multiple of 16: the masked magnitude bits of 16 floats per
 * step go into four running unsigned maxima (two operations per 4 floats, no compare in the
 * loop), compared with `bound` once at the end. Locals: 3 $end, 4 $bv, 5 $abs, 6-9 $max_0..3.
 */
function checkBody(): number[] {
  const [X, N, BOUND, END, BV, ABS] = [0, 1, 2, 3, 4, 5];
  const MAX = (j: number) => 6 + j;
  const step: number[] = [];
  for (let j = 0; j < 4; j++) step.push(...get(MAX(j)), ...get(X), ...simd(V128_LOAD), 4, 16 * j, ...get(ABS), ...simd(V128_AND), ...simd(I32X4_MAX_U), ...set(MAX(j)));
  return [
    2, 1, I32, 6, V128,
    ...get(BOUND), ...simd(I32X4_SPLAT), ...set(BV),
    ...i32(0x7fffffff), ...simd(I32X4_SPLAT), ...set(ABS),
    ...get(X), ...get(N), ...i32(2), I32_SHL, I32_ADD, ...set(END),
    ...loop(X, END, 64, step),
    ...get(MAX(0)), ...get(MAX(1)), ...simd(I32X4_MAX_U), ...get(MAX(2)), ...get(MAX(3)), ...simd(I32X4_MAX_U), ...simd(I32X4_MAX_U),
    ...get(BV), ...simd(I32X4_GT_U), ...simd(V128_ANY_TRUE),
    0x0b,
  ];
}

/**
 * Body of `foldK(dst, n, x_0..x_{K-1}, w_0..w_{K-1})`, n a multiple of 2 * UNROLL. Params: 0 $dst,
 * 1 $n, 2+j $x_j, 2+K+j $w_j; locals: $o (byte offset into the float32 arrays), $end, $d (address
 * in dst), then v128 $wv_j and one accumulator per f64x2 pair of the step.
 */
function foldBody(K: number): number[] {
  const DST = 0, N = 1, X = (j: number) => 2 + j, W = (j: number) => 2 + K + j;
  const O = 2 + 2 * K, END = O + 1, D = O + 2, WV = (j: number) => O + 3 + j, ACC = (h: number) => O + 3 + K + h;
  const step: number[] = [];
  for (let h = 0; h < UNROLL; h++) step.push(...get(D), ...simd(V128_LOAD), 4, ...uleb(16 * h), ...set(ACC(h)));
  for (let j = 0; j < K; j++)
    for (let h = 0; h < UNROLL; h++)
      step.push(
        ...get(ACC(h)),
        ...get(X(j)), ...get(O), I32_ADD, ...simd(V128_LOAD64_ZERO), 3, ...uleb(8 * h), ...simd(F64X2_PROMOTE_LOW_F32X4),
        ...get(WV(j)), ...simd(F64X2_MUL), ...simd(F64X2_ADD), ...set(ACC(h)),
      );
  for (let h = 0; h < UNROLL; h++) step.push(...get(D), ...get(ACC(h)), ...simd(V128_STORE), 4, ...uleb(16 * h));
  step.push(...get(D), ...i32(16 * UNROLL), I32_ADD, ...set(D));
  const splats: number[] = [];
  for (let j = 0; j < K; j++) splats.push(...get(W(j)), ...simd(F64X2_SPLAT), ...set(WV(j)));
  return [
    2, 3, I32, ...uleb(K + UNROLL), V128,
    ...splats,
    ...get(N), ...i32(2), I32_SHL, ...set(END),
    ...get(DST), ...set(D),
    ...loop(O, END, 8 * UNROLL, step),
    0x0b,
  ];
}

/** The module's bytes: type and function 0 is `check`, type and function K is `foldK`. */
export function foldModuleBytes(): Uint8Array<ArrayBuffer> {
  const types = [[0x60, 3, I32, I32, I32, 1, I32]];
  const check = checkBody();
  const bodies = [[...uleb(check.length), ...check]];
  const exports = [[...name('check'), 0x00, 0]];
  for (let K = 1; K <= FOLD_MAX; K++) {
    types.push([0x60, ...uleb(2 + 2 * K), I32, I32, ...Array(K).fill(I32), ...Array(K).fill(F64), 0]);
    const body = foldBody(K);
    bodies.push([...uleb(body.length), ...body]);
    exports.push([...name(`fold${K}`), 0x00, K]);
  }
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec(types)),
    ...section(2, [1, ...name('env'), ...name('mem'), 0x02, 0x00, 1]), // import env.mem, min 1 page
    ...section(3, vec(types.map((_, i) => uleb(i)))),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ]);
}

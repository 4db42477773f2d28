/**
 * Order statistics shared by the FL core, the simulator's sweep and the benchmarks (bench/stats.ts
 * re-exports them), so one definition decides what "median" means everywhere.
 *
 * `median`: the middle value of `xs` after sorting numerically; for an even count the mean of the
 * two middle values; NaN for an empty list. Does not modify `xs`.
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const a = Float64Array.from(xs).sort();
  const mid = a.length >> 1;
  return a.length % 2 ? a[mid] : (a[mid - 1] + a[mid]) / 2;
}

/** Pure checks on a decoded update. The coordinator maps a false result to a coded rejection. */
export function allFinite(x: Float32Array): boolean {
  // x * 0 is 0 for finite x and NaN for NaN or +-Infinity: one branch-free pass, one test at the end.
  let acc = 0;
  for (let i = 0; i < x.length; i++) acc += x[i] * 0;
  return acc === 0;
}

export { l2Norm } from '@flotilla/protocol';

/** Pure checks on a decoded update. The coordinator maps a false result to a coded rejection. */
export function allFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v !== v || v === Infinity || v === -Infinity) return false;
  }
  return true;
}

export function l2Norm(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

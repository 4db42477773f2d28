/**
 * Who shares secrets with whom in a secure-aggregation round. SecAgg (Bonawitz et al., CCS 2017)
 * uses the complete graph; SecAgg+ (Bell et al., CCS 2020) a sparse random k-regular graph, here
 * the Harary graph H(k, n) (node i joined to i ± 1..k/2 around a ring) laid over a random
 * permutation of the devices, so each device masks with and shares with O(k) others.
 * Contract: the result is symmetric, has no self-loops, and every node has exactly
 * min(k, n - 1) neighbours (k rounded up to even when n - 1 > k; complete when k >= n - 1).
 */
export type Neighbours = number[][];

/** Neighbour lists by position 0..n-1; `random` returns uniform numbers in [0, 1). */
export function neighbourGraph(n: number, k: number | 'complete', random: () => number): Neighbours {
  const out: Neighbours = Array.from({ length: n }, () => []);
  if (k === 'complete' || k >= n - 1) {
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) out[i].push(j);
    return out;
  }
  const half = Math.ceil(k / 2);
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const sets = Array.from({ length: n }, () => new Set<number>());
  for (let p = 0; p < n; p++) {
    for (let d = 1; d <= half; d++) {
      const a = perm[p];
      const b = perm[(p + d) % n];
      sets[a].add(b);
      sets[b].add(a);
    }
  }
  sets.forEach((s, i) => out[i].push(...[...s].sort((a, b) => a - b)));
  return out;
}

/** SecAgg+'s default degree: 2 ceil(log2 n), Bell et al.'s O(log n) regime. */
export function defaultDegree(n: number): number {
  return Math.min(n - 1, 2 * Math.ceil(Math.log2(Math.max(2, n))));
}

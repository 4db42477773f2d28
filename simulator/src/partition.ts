import { createRng, dirichlet as dirichletDraw, shuffle, type Rng } from './rng.js';

/**
 * Splitting a labelled dataset over simulated clients. Every partitioner is a pure function of
 * (labels, options): same seed, same split. Each returns one ascending Uint32Array of row indices
 * per client; the sets are disjoint. A client holds only its index array, never a copy of rows.
 */
export const PARTITIONS = ['iid', 'shards', 'dirichlet'] as const;
export type PartitionName = (typeof PARTITIONS)[number];

export interface PartitionOptions {
  clients: number;
  seed: number;
  /** iid: rows per client (default: all rows, spread as evenly as possible). shards: rows per client = shardsPerClient * shard size. */
  examplesPerClient?: number;
  /** shards: shards per client (McMahan et al. 2017: 2). */
  shardsPerClient?: number;
  /** dirichlet: concentration; small (0.1) is very skewed, large (100) near uniform. */
  alpha?: number;
  /** dirichlet: every client ends with at least this many rows (moved from the largest clients). Default 1. */
  minPerClient?: number;
}

function checkClients(n: number, clients: number, need = 1): void {
  if (!Number.isInteger(clients) || clients < 1) throw new RangeError(`clients must be a positive integer, got ${clients}`);
  if (clients * need > n) throw new RangeError(`cannot give ${clients} clients ${need} row(s) each from ${n} rows`);
}

function sortedCopy(a: ArrayLike<number>): Uint32Array {
  return Uint32Array.from(a).sort();
}

/** A uniformly random permutation of 0..n-1. */
function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffle(p, rng);
}

/**
 * IID: shuffle all rows and deal them out in equal blocks. With `examplesPerClient`, each client
 * gets exactly that many (clients * examplesPerClient <= n); otherwise all n rows are used and
 * sizes differ by at most one.
 */
export function iid(labels: ArrayLike<number>, opts: PartitionOptions): Uint32Array[] {
  const n = labels.length;
  const per = opts.examplesPerClient;
  checkClients(n, opts.clients, per ?? 1);
  const perm = permutation(n, createRng(opts.seed));
  const out: Uint32Array[] = [];
  let start = 0;
  for (let c = 0; c < opts.clients; c++) {
    const size = per ?? Math.floor(n / opts.clients) + (c < n % opts.clients ? 1 : 0);
    out.push(sortedCopy(perm.subarray(start, start + size)));
    start += size;
  }
  return out;
}

/** Row indices ordered by label, stable within a label (counting sort). */
export function sortByLabel(labels: ArrayLike<number>): Uint32Array {
  let k = 0;
  for (let i = 0; i < labels.length; i++) k = Math.max(k, labels[i] + 1);
  const starts = new Uint32Array(k + 1);
  for (let i = 0; i < labels.length; i++) starts[labels[i] + 1]++;
  for (let c = 0; c < k; c++) starts[c + 1] += starts[c];
  const out = new Uint32Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[starts[labels[i]]++] = i;
  return out;
}

/**
 * Pathological non-IID split of McMahan et al. 2017 ("Communication-Efficient Learning of Deep
 * Networks from Decentralized Data", sec. 3): sort rows by label, cut them into
 * clients * shardsPerClient contiguous shards of equal size, give each client shardsPerClient
 * shards at random. For MNIST and 100 clients: 200 shards of 300, 2 per client, so most clients
 * see two digits (a shard that straddles a label boundary adds a third). Rows beyond
 * numShards * shardSize (when n does not divide) are left out.
 */
export function shards(labels: ArrayLike<number>, opts: PartitionOptions): Uint32Array[] {
  const n = labels.length;
  const spc = opts.shardsPerClient ?? 2;
  if (!Number.isInteger(spc) || spc < 1) throw new RangeError(`shardsPerClient must be a positive integer, got ${spc}`);
  checkClients(n, opts.clients, spc);
  const numShards = opts.clients * spc;
  const shardSize = opts.examplesPerClient !== undefined ? Math.floor(opts.examplesPerClient / spc) : Math.floor(n / numShards);
  if (shardSize < 1 || numShards * shardSize > n) {
    throw new RangeError(`cannot cut ${numShards} shards of ${shardSize} rows from ${n} rows`);
  }
  const sorted = sortByLabel(labels);
  const order = permutation(numShards, createRng(opts.seed));
  const out: Uint32Array[] = [];
  for (let c = 0; c < opts.clients; c++) {
    const idx = new Uint32Array(spc * shardSize);
    for (let s = 0; s < spc; s++) {
      const shard = order[c * spc + s];
      idx.set(sorted.subarray(shard * shardSize, (shard + 1) * shardSize), s * shardSize);
    }
    out.push(idx.sort());
  }
  return out;
}

/**
 * Label-skewed split by Dirichlet proportions (Hsu, Qi & Brown 2019, "Measuring the Effects of
 * Non-Identical Data Distribution for Federated Visual Classification"): for each class, draw
 * p ~ Dir(alpha * 1) over clients and deal that class's (shuffled) rows out in proportion p.
 * Every row is used exactly once. Clients left below `minPerClient` rows take rows from the
 * largest clients, so every device has something to train on.
 */
export function dirichlet(labels: ArrayLike<number>, opts: PartitionOptions): Uint32Array[] {
  const n = labels.length;
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new RangeError(`alpha must be a positive number, got ${alpha}`);
  const minPer = opts.minPerClient ?? 1;
  checkClients(n, opts.clients, minPer);
  const rng = createRng(opts.seed);
  const sorted = sortByLabel(labels);
  const buckets: number[][] = Array.from({ length: opts.clients }, () => []);
  let start = 0;
  while (start < n) {
    const label = labels[sorted[start]];
    let end = start;
    while (end < n && labels[sorted[end]] === label) end++;
    const rows = shuffle(sorted.slice(start, end), rng);
    const p = dirichletDraw(opts.clients, alpha, rng);
    let cum = 0;
    let from = 0;
    for (let c = 0; c < opts.clients; c++) {
      cum += p[c];
      const to = c === opts.clients - 1 ? rows.length : Math.min(rows.length, Math.round(cum * rows.length));
      for (let i = from; i < to; i++) buckets[c].push(rows[i]);
      from = Math.max(from, to);
    }
    start = end;
  }
  // Top up small clients from the largest ones (deterministic: rng picks which row moves).
  for (let c = 0; c < opts.clients; c++) {
    while (buckets[c].length < minPer) {
      let big = 0;
      for (let j = 1; j < opts.clients; j++) if (buckets[j].length > buckets[big].length) big = j;
      const pick = Math.floor(rng() * buckets[big].length);
      const row = buckets[big][pick];
      buckets[big][pick] = buckets[big][buckets[big].length - 1];
      buckets[big].pop();
      buckets[c].push(row);
    }
  }
  return buckets.map((b) => Uint32Array.from(b).sort());
}

export function partition(name: PartitionName, labels: ArrayLike<number>, opts: PartitionOptions): Uint32Array[] {
  switch (name) {
    case 'iid':
      return iid(labels, opts);
    case 'shards':
      return shards(labels, opts);
    case 'dirichlet':
      return dirichlet(labels, opts);
  }
}

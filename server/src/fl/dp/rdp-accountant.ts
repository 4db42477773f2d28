import { logAdd, logComb, logErfc } from './special-functions.js';

/**
 * Renyi-DP accounting of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang 2019,
 * "Renyi Differential Privacy of the Sampled Gaussian Mechanism"), following the computation of
 * Google's dp_accounting RdpAccountant (the successor of TF Privacy's compute_rdp):
 *   - integer orders: the exact binomial expansion of A_alpha (Sec. 3.3);
 *   - fractional orders: the two-sided series of Sec. 3.3, summing magnitudes (an upper bound);
 *   - RDP -> (eps, delta): eps = rdp + log1p(-1/a) - log(delta * a) / (a - 1), minimised over the
 *     orders (Canonne, Kamath & Steinke 2020, Prop. 12; Asoodeh et al. 2020), and 0 when
 *     delta^2 + expm1(-rdp) > 0.
 * Neighbouring relation: add/remove one participant (one device in federated DP-FedAvg).
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 53 }, (_, x) => 11 + x),
  128,
  256,
  512,
  1024,
];

function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  const logq = Math.log(q);
  const log1mq = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    const s = logComb(alpha, i) + i * logq + (alpha - i) * log1mq + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

const MAX_FRAC_STEPS = 1000;

function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logq = Math.log(q);
  const log1mq = Math.log1p(-q);
  let last0 = -Infinity;
  let last1 = -Infinity;
  for (let i = 0; i < MAX_FRAC_STEPS; i++) {
    const logCoef = logComb(alpha, i);
    const j = alpha - i;
    const logT0 = logCoef + i * logq + j * log1mq;
    const logT1 = logCoef + j * logq + i * log1mq;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    logA0 = logAdd(logA0, logS0);
    logA1 = logAdd(logA1, logS1);
    const total = logAdd(logA0, logA1);
    if (logS0 < last0 && logS1 < last1 && Math.max(logS0, logS1) < total - 30) return total;
    last0 = logS0;
    last1 = logS1;
  }
  return Infinity; // did not converge: the order is excluded (eps at this order is Infinity)
}

/** RDP at one order of one step of the sampled Gaussian mechanism with rate q and noise multiplier sigma. */
export function rdpAtOrder(q: number, sigma: number, alpha: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sampling rate must be in [0, 1], got ${q}`);
  if (!(sigma >= 0)) throw new RangeError(`noise multiplier must be >= 0, got ${sigma}`);
  if (!(alpha > 1)) throw new RangeError(`order must be > 1, got ${alpha}`);
  if (q === 0) return 0;
  if (alpha === Infinity || sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP of `steps` compositions, per order (TF Privacy's compute_rdp). */
export function computeRdp(q: number, sigma: number, steps: number, orders: readonly number[] = DEFAULT_RDP_ORDERS): number[] {
  return orders.map((a) => rdpAtOrder(q, sigma, a) * steps);
}

/** The smallest eps over the orders for which the RDP curve gives (eps, delta)-DP, and its order. */
export function epsilonFromRdp(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  if (orders.length !== rdp.length) throw new RangeError('orders and rdp differ in length');
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  let best = Infinity;
  let order = orders[0];
  orders.forEach((a, i) => {
    const r = rdp[i];
    let eps: number;
    if (r < 0) eps = 0;
    else if (delta * delta + Math.expm1(-r) > 0) eps = 0;
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best) {
      best = eps;
      order = a;
    }
  });
  return { epsilon: Math.max(0, best), order };
}

/** The smallest delta over the orders for a target eps (dp_accounting compute_delta), and its order. */
export function deltaFromRdp(orders: readonly number[], rdp: readonly number[], epsilon: number): { delta: number; order: number } {
  if (orders.length !== rdp.length) throw new RangeError('orders and rdp differ in length');
  if (!(epsilon >= 0)) throw new RangeError(`epsilon must be >= 0, got ${epsilon}`);
  let best = Infinity;
  let order = orders[0];
  orders.forEach((a, i) => {
    const r = rdp[i];
    let logDelta = r <= 0 ? -Infinity : 0.5 * Math.log1p(-Math.exp(-r));
    if (a > 1.01) logDelta = Math.min(logDelta, (a - 1) * (r - epsilon + Math.log1p(-1 / a)) - Math.log(a));
    if (logDelta < best) {
      best = logDelta;
      order = a;
    }
  });
  return { delta: Math.min(Math.exp(best), 1), order };
}

/**
 * Running RDP total over rounds. compose(q, sigma) once per noisy release; epsilon(delta) at any
 * time. Per-(q, sigma) RDP vectors are cached, since rounds usually repeat them.
 */
export class RdpAccountant {
  private readonly total: Float64Array;
  private readonly cache = new Map<string, number[]>();
  private steps = 0;

  constructor(readonly orders: readonly number[] = DEFAULT_RDP_ORDERS) {
    this.total = new Float64Array(orders.length);
  }

  compose(q: number, sigma: number, count = 1): void {
    const key = `${q}:${sigma}`;
    let r = this.cache.get(key);
    if (!r) {
      r = computeRdp(q, sigma, 1, this.orders);
      this.cache.set(key, r);
    }
    for (let i = 0; i < r.length; i++) this.total[i] += r[i] * count;
    this.steps += count;
  }

  get compositions(): number {
    return this.steps;
  }

  epsilon(delta: number): number {
    if (this.steps === 0) return 0;
    return epsilonFromRdp(this.orders, Array.from(this.total), delta).epsilon;
  }

  exportState(): { orders: number[]; rdp: Array<number | null>; steps: number } {
    // JSON has no Infinity: null stands for it.
    return { orders: [...this.orders], rdp: Array.from(this.total, (v) => (Number.isFinite(v) ? v : null)), steps: this.steps };
  }

  importState(s: { orders: number[]; rdp: Array<number | null>; steps: number }): void {
    if (!Array.isArray(s?.orders) || s.orders.length !== this.orders.length || s.orders.some((o, i) => o !== this.orders[i])) {
      throw new RangeError('accountant state: orders differ');
    }
    if (!Array.isArray(s.rdp) || s.rdp.length !== this.orders.length || !Number.isInteger(s.steps) || s.steps < 0) {
      throw new RangeError('accountant state: malformed');
    }
    s.rdp.forEach((v, i) => (this.total[i] = v === null ? Infinity : v));
    this.steps = s.steps;
  }
}

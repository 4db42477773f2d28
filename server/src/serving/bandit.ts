import { beta as sampleBeta, type Rng } from '../fl/rng.js';
/**
 * Multi-armed bandits over a deployment's candidate versions, learning from delayed rewards in
 * [0, 1] (`POST /api/v1/deployments/{name}/feedback`). Pure: no I/O; randomness is injected.
 *
 *  - Thompson sampling with Beta-Bernoulli posteriors (Thompson 1933; Chapelle & Li 2011, "An
 *    Empirical Evaluation of Thompson Sampling"): each arm's posterior is Beta(alpha, beta) from a
 *    Beta(1, 1) prior; a reward r adds r to alpha and 1 - r to beta; each request goes to the arm
 *    whose posterior sample is largest.
 *  - UCB1 (Auer, Cesa-Bianchi & Fischer 2002, "Finite-time Analysis of the Multiarmed Bandit
 *    Problem"): play the arm maximising mean + sqrt(2 ln N / n), N rewards observed in all, n on
 *    the arm. With delayed feedback, arms without any reward yet go first, least-chosen first.
 */
export type BanditAlgorithm = 'thompson' | 'ucb1';

export interface ArmState {
  key: string;
  alpha: number;
  beta: number;
  /** Times the arm was chosen. */
  pulls: number;
  /** Rewards received and their sum. */
  rewards: number;
  rewardSum: number;
}

export type { Rng } from '../fl/rng.js';

/** Beta variate used for Thompson sampling (the FL core's random module). */
export { beta as sampleBeta } from '../fl/rng.js';

export class Bandit {
  readonly arms: ArmState[];

  constructor(
    readonly algorithm: BanditAlgorithm,
    keys: readonly string[],
    saved: readonly ArmState[] = [],
    private readonly rng: Rng = Math.random,
  ) {
    const byKey = new Map(saved.map((a) => [a.key, a]));
    this.arms = keys.map((key) => ({ ...(byKey.get(key) ?? { key, alpha: 1, beta: 1, pulls: 0, rewards: 0, rewardSum: 0 }) }));
  }

  /** Index of the arm that serves the next request (counted as a pull). */
  choose(): number {
    const i = this.algorithm === 'thompson' ? this.thompson() : this.ucb1();
    this.arms[i].pulls++;
    return i;
  }

  private thompson(): number {
    let best = 0;
    let bestSample = -1;
    this.arms.forEach((a, i) => {
      const s = sampleBeta(a.alpha, a.beta, this.rng);
      if (s > bestSample) {
        bestSample = s;
        best = i;
      }
    });
    return best;
  }

  private ucb1(): number {
    const unseen = this.arms.map((a, i) => [a, i] as const).filter(([a]) => a.rewards === 0);
    if (unseen.length > 0) return unseen.reduce((m, x) => (x[0].pulls < m[0].pulls ? x : m))[1];
    const total = this.arms.reduce((n, a) => n + a.rewards, 0);
    let best = 0;
    let bestScore = -Infinity;
    this.arms.forEach((a, i) => {
      const score = a.rewardSum / a.rewards + Math.sqrt((2 * Math.log(total)) / a.rewards);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    });
    return best;
  }

  /** Credit a reward in [0, 1] to arm `i`. */
  reward(i: number, r: number): void {
    const a = this.arms[i];
    a.alpha += r;
    a.beta += 1 - r;
    a.rewards++;
    a.rewardSum += r;
  }

  snapshot(): ArmState[] {
    return this.arms.map((a) => ({ ...a }));
  }

  /** Per arm: posterior (Thompson) or the UCB1 index, and the observed mean reward. */
  summary(): Array<ArmState & { meanReward: number | null; posteriorMean: number; ucb: number | null }> {
    const total = this.arms.reduce((n, a) => n + a.rewards, 0);
    return this.arms.map((a) => ({
      ...a,
      meanReward: a.rewards > 0 ? a.rewardSum / a.rewards : null,
      posteriorMean: a.alpha / (a.alpha + a.beta),
      ucb: a.rewards > 0 && total > 0 ? a.rewardSum / a.rewards + Math.sqrt((2 * Math.log(total)) / a.rewards) : null,
    }));
  }
}

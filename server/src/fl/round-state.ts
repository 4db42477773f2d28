/**
 * The round life cycle (docs/architecture.md, "Life of a round"): a fixed union of states with explicit transitions.
 *
 *   selecting -> training -> aggregating -> committing -> done
 *        \           \             \             \
 *         `-----------`-------------`-------------`--> failed
 *
 * `training` closes into `aggregating` when `target` reports arrived, or at the deadline when at
 * least `minReports` did; otherwise it fails and the global model is unchanged.
 */
export type RoundState = 'selecting' | 'training' | 'aggregating' | 'committing' | 'done' | 'failed';

const NEXT: Record<RoundState, readonly RoundState[]> = {
  selecting: ['training', 'failed'],
  training: ['aggregating', 'failed'],
  aggregating: ['committing', 'failed'],
  committing: ['done', 'failed'],
  done: [],
  failed: [],
};

export function canTransition(from: RoundState, to: RoundState): boolean {
  return NEXT[from].includes(to);
}

export function assertTransition(from: RoundState, to: RoundState): void {
  if (!canTransition(from, to)) throw new Error(`illegal round transition ${from} -> ${to}`);
}

export function isTerminal(s: RoundState): boolean {
  return s === 'done' || s === 'failed';
}

/** What the deadline decides for a round still training. */
export function closeAtDeadline(reports: number, minReports: number): 'aggregate' | 'fail' {
  return reports >= minReports ? 'aggregate' : 'fail';
}

import { AppError, type TaskPlan } from '@flotilla/protocol';

/**
 * Which strategies can step on an asynchronous buffer (docs/async.md, "Strategies"). A buffer is
 * folded in O(model) memory and its reports come from whichever devices finished, with different
 * base versions; strategies that need every update of a round at once (median, trimmed mean,
 * Krum) or a fixed cohort per round are refused. The list is an allow-list on purpose: a strategy
 * added later is refused until someone has checked it works on buffers.
 */
const ASYNC_STRATEGIES: ReadonlySet<string> = new Set(['fedavg', 'fedavgm', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad', 'normbounded', 'dpfedavg']);

/** Throws FL_ERR_ASYNC_STRATEGY_UNSUPPORTED when an async plan names a strategy that cannot work on a buffer. */
export function checkAsyncStrategy(plan: TaskPlan): void {
  if (plan.mode !== 'async') return;
  const name = plan.strategy.name;
  if (!ASYNC_STRATEGIES.has(name)) {
    throw new AppError('FL_ERR_ASYNC_STRATEGY_UNSUPPORTED', { strategy: name, supported: [...ASYNC_STRATEGIES], why: 'it needs every update of a round at once or a fixed cohort' });
  }
  if (name === 'dpfedavg') {
    const params = plan.strategy.params as { inner?: unknown; populationSize?: unknown };
    // Amplification by subsampling needs Poisson (or uniform) sampling of each release's
    // contributors; who lands in an async buffer depends on device speeds, so buffers are
    // accounted with q = 1 (docs/async.md, "Differential privacy").
    if (params.populationSize !== undefined) {
      throw new AppError('FL_ERR_ASYNC_STRATEGY_UNSUPPORTED', { strategy: 'dpfedavg', param: 'populationSize', why: 'async buffers are not sampled uniformly; privacy is accounted without amplification (q = 1)' });
    }
    const inner = params.inner ?? 'fedavg';
    if (typeof inner === 'string' && !ASYNC_STRATEGIES.has(inner)) throw new AppError('FL_ERR_ASYNC_STRATEGY_UNSUPPORTED', { strategy: `dpfedavg(${inner})`, supported: [...ASYNC_STRATEGIES] });
  }
}

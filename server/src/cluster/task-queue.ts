import type { CoordinatorLogger } from '../coordinator/deps.js';

/**
 * Per-task serial work on a node's runner (docs/cluster.md): the follower's reactions to the
 * leader's messages (`open`, `close`, `end`, `task`) and leadership changes run one after another
 * in arrival order, so an `open` is applied before the `end` that follows it. Contract: a failed
 * step is logged and does not stop later ones; `ready` resolves once every step queued so far ran
 * (device events on a follower wait for it).
 */
export class TaskQueue {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly logger: CoordinatorLogger) {}

  run(taskId: string, fn: () => Promise<void>): void {
    const next = (this.chains.get(taskId) ?? Promise.resolve()).then(fn).catch((err) => this.logger.error({ err, task: taskId }, 'cluster: task update failed'));
    this.chains.set(taskId, next);
  }

  ready(taskId: string): Promise<void> {
    return this.chains.get(taskId) ?? Promise.resolve();
  }
}

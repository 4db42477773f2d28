import type { RoundRecord } from '@flotilla/server';
import type { TaskPlanInput } from '@flotilla/protocol';
import { fetchWithRetry, type RetryOptions } from './coordinator-fetch.js';

/**
 * The simulator's view of a coordinator it does not own (--url): the admin REST API only.
 * `ensureTask` creates the task when missing; `follow` starts it and polls its rounds until the
 * task ends, the round cap is reached, or the simulator's own evaluation meets the target (then
 * it stops the task). Every call waits out a coordinator that is unreachable or restarting (see
 * coordinator-fetch.ts); the calls that change state are safe to repeat after a lost answer.
 */
export interface RemoteTask {
  id: string;
  modelName: string;
  state: string;
  stateReason: string | null;
  nextRound: number;
  currentVersion: number;
}

export interface FollowOptions {
  rounds: number;
  target?: number;
  pollMs?: number;
  /** Evaluate a committed version on the simulator's test set. */
  evaluate(version: number): Promise<{ accuracy: number; loss: number }>;
  onRound(r: RoundRecord, own?: { accuracy: number; loss: number }): void;
  /** Stops the task and ends the follow early. */
  signal?: AbortSignal;
}

const TERMINAL_TASK = new Set(['done', 'stopped', 'failed']);
const TERMINAL_ROUND = new Set(['done', 'failed']);

export class RemoteCoordinator {
  constructor(
    private readonly baseUrl: string,
    private readonly adminToken: string,
    private readonly retry: RetryOptions = {},
  ) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const init: RequestInit = {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    };
    const res = await fetchWithRetry(new URL(path, this.baseUrl), init, this.retry);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // keep text
    }
    return { status: res.status, body: parsed as T };
  }

  private async ok<T>(method: string, path: string, body?: unknown, tolerate?: string): Promise<T | null> {
    const r = await this.call<T>(method, path, body);
    if (r.status >= 300) {
      const err = (r.body as { error?: { code?: string; message?: string } })?.error;
      // A repeated request whose first attempt took effect before its answer was lost.
      if (tolerate !== undefined && err?.code === tolerate) return null;
      throw new Error(`${method} ${path}: HTTP ${r.status}${err ? ` ${err.code}: ${err.message}` : ''}`);
    }
    return r.body;
  }

  async getTask(id: string): Promise<RemoteTask | null> {
    const r = await this.call<RemoteTask>('GET', `/api/v1/tasks/${encodeURIComponent(id)}`);
    if (r.status === 404) return null;
    if (r.status >= 300) throw new Error(`GET task ${id}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    return r.body;
  }

  /** The task `id`, created from `preset` and `plan` when the coordinator has none. */
  async ensureTask(id: string, preset: string, plan: TaskPlanInput): Promise<RemoteTask> {
    const t = await this.getTask(id);
    if (t) return t;
    const made = await this.ok<RemoteTask>('POST', '/api/v1/tasks', { id, preset, plan }, 'FL_ERR_TASK_EXISTS');
    return made ?? this.mustGet(id);
  }

  private async mustGet(id: string): Promise<RemoteTask> {
    const t = await this.getTask(id);
    if (!t) throw new Error(`task ${id} vanished`);
    return t;
  }

  async listRounds(id: string, limit = 100): Promise<RoundRecord[]> {
    const r = await this.ok<{ rounds: RoundRecord[] }>('GET', `/api/v1/tasks/${encodeURIComponent(id)}/rounds?limit=${limit}`);
    return r!.rounds;
  }

  /** A state change; an FL_ERR_TASK_INVALID_STATE answer (a repeat of one that took effect) gives the task as it is. */
  async action(id: string, action: 'start' | 'stop' | 'pause'): Promise<RemoteTask> {
    return (await this.ok<RemoteTask>('POST', `/api/v1/tasks/${encodeURIComponent(id)}/${action}`, undefined, 'FL_ERR_TASK_INVALID_STATE')) ?? this.mustGet(id);
  }

  /** Start (or resume) the task and report each round that closes after now. Resolves with the stop reason. */
  async follow(id: string, o: FollowOptions): Promise<string> {
    let task = await this.mustGet(id);
    const firstRound = task.nextRound;
    if (task.state === 'created' || task.state === 'paused') task = await this.action(id, 'start');
    else if (task.state !== 'running') throw new Error(`task ${id} is ${task.state}; nothing to follow`);
    let seen = firstRound - 1;
    let count = 0;
    const pollMs = o.pollMs ?? 500;
    for (;;) {
      if (o.signal?.aborted) {
        await this.stopQuietly(id);
        return 'interrupted';
      }
      const rounds = (await this.listRounds(id)).filter((r) => r.round > seen && TERMINAL_ROUND.has(r.state)).sort((a, b) => a.round - b.round);
      // Fell more than a page behind: fetch the missing rounds one by one, so none is skipped.
      if (rounds.length > 0 && rounds[0].round > seen + 1) {
        const missing: RoundRecord[] = [];
        for (let n = seen + 1; n < rounds[0].round; n++) missing.push((await this.ok<RoundRecord>('GET', `/api/v1/tasks/${encodeURIComponent(id)}/rounds/${n}`))!);
        rounds.unshift(...missing);
      }
      for (const r of rounds) {
        // Rounds close in order; stop at a gap so none is reported twice or skipped.
        if (r.round !== seen + 1 || !TERMINAL_ROUND.has(r.state)) break;
        seen = r.round;
        count++;
        let own: { accuracy: number; loss: number } | undefined;
        if (r.state === 'done' && r.committedVersion !== undefined) own = await o.evaluate(r.committedVersion);
        o.onRound(r, own);
        if (own && o.target !== undefined && own.accuracy >= o.target) {
          await this.stopQuietly(id);
          return `target accuracy ${o.target} reached at round ${r.round}`;
        }
        if (count >= o.rounds) {
          await this.stopQuietly(id);
          return `round cap ${o.rounds} reached`;
        }
      }
      const ended = TERMINAL_TASK.has(task.state);
      task = await this.mustGet(id);
      // Once the task has ended, one more pass picks up rounds that closed meanwhile; then stop.
      if (ended) return task.stateReason ?? task.state;
      if (!TERMINAL_TASK.has(task.state)) await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  private async stopQuietly(id: string): Promise<void> {
    const t = await this.getTask(id);
    if (t && !TERMINAL_TASK.has(t.state)) await this.action(id, 'stop').catch(() => undefined);
  }
}

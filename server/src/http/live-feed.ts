import type { Coordinator } from '../coordinator/coordinator.js';
import type { RoundRecord, TaskRecord } from '../store/records.js';
import { roundSummary, taskView } from './task-view.js';

export interface LiveFeedOptions {
  /** How often a `pulse` (every task's live state) goes out while someone listens (default 1000 ms). */
  pulseMs?: number;
  /** Bytes a subscriber may leave unread before it is cut off (it reconnects and reloads; default 1 MiB). */
  maxBufferedBytes?: number;
}

/** One listener: `write` returns the bytes it still holds unsent; `close` ends its stream. */
export interface LiveSubscriber {
  write(chunk: string): number;
  close(): void;
}

/**
 * The console's live channel, once per app: listens to the coordinator's events once, turns each
 * into one server-sent-events frame (serialised once, whatever the number of listeners) and
 * writes it to every subscriber; while anyone listens, a `pulse` every `pulseMs` carries each
 * task's state and the round in flight (reports arriving, deadline). Frames:
 *  - `task`: the task view (tasks-routes' GET /api/v1/tasks/{id}) after a state or plan change;
 *  - `round`: a round summary (GET .../rounds) with `taskId`, when a round commits or fails;
 *  - `evaluation`: `{ taskId, round, version, metrics }` of a federated evaluation;
 *  - `pulse`: `snapshot()`.
 * A subscriber that leaves more than `maxBufferedBytes` unread is closed, so a stalled console
 * never grows the server's memory.
 */
export class LiveFeed {
  private readonly subs = new Set<LiveSubscriber>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly pulseMs: number;
  private readonly maxBuffered: number;
  private readonly off: Array<() => void> = [];
  /** Frames written since start (all subscribers together), for the benchmark and tests. */
  framesWritten = 0;

  constructor(
    private readonly coordinator: Coordinator,
    opts: LiveFeedOptions = {},
  ) {
    this.pulseMs = opts.pulseMs ?? 1000;
    this.maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    const on = <T>(event: string, f: (x: T) => void) => {
      coordinator.events.on(event, f);
      this.off.push(() => coordinator.events.off(event, f));
    };
    on<TaskRecord>('task', (t) => this.broadcast('task', () => taskView(t, coordinator.sessions.forTask(t.id).length)));
    on<RoundRecord>('round', (r) => this.broadcast('round', () => ({ taskId: r.taskId, ...roundSummary(r) })));
    on<unknown>('evaluation', (e) => this.broadcast('evaluation', () => e));
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** Every task's live state: what a console needs between events. */
  snapshot() {
    return {
      at: Date.now(),
      tasks: this.coordinator.listRunners().map((runner) => {
        const t = runner.record;
        const live = runner.currentRound;
        const r = live?.record;
        return {
          id: t.id,
          state: t.state,
          currentVersion: t.currentVersion,
          nextRound: t.nextRound,
          connectedDevices: this.coordinator.sessions.forTask(t.id).length,
          round: r
            ? { round: r.round, state: live.state, selected: r.selected.length, reported: r.reported.length, rejected: r.rejected.length, dropped: r.dropped.length, startedAt: r.startedAt, deadline: r.deadline }
            : null,
        };
      }),
    };
  }

  /** Adds a listener (it gets a first pulse at once); returns the function that removes it. */
  subscribe(s: LiveSubscriber): () => void {
    this.subs.add(s);
    this.send(s, frame('pulse', this.snapshot()));
    if (!this.timer) {
      this.timer = setInterval(() => this.broadcast('pulse', () => this.snapshot()), this.pulseMs);
      this.timer.unref();
    }
    return () => this.remove(s);
  }

  /** Ends every stream and stops listening (app close). */
  close(): void {
    for (const s of [...this.subs]) {
      this.remove(s);
      s.close();
    }
    for (const f of this.off.splice(0)) f();
  }

  private remove(s: LiveSubscriber): void {
    this.subs.delete(s);
    if (this.subs.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /**
   * Builds the frame only when someone listens, and never throws: these run inside the
   * coordinator's event emits, which must not see a console's failure.
   */
  private broadcast(event: string, data: () => unknown): void {
    if (this.subs.size === 0) return;
    let f: string;
    try {
      f = frame(event, data());
    } catch {
      return;
    }
    for (const s of [...this.subs]) this.send(s, f);
  }

  private send(s: LiveSubscriber, f: string): void {
    if (s.write(f) > this.maxBuffered) {
      this.remove(s);
      s.close();
      return;
    }
    this.framesWritten++;
  }
}

/** One server-sent-events frame; JSON never holds a raw newline, so `data` is one line. */
export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

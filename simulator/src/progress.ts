import cliProgress from 'cli-progress';
import type { RoundRow } from './results.js';

/**
 * Round progress for the CLI. On a TTY: a cli-progress bar over the round cap, with each closed
 * round's line printed above it. Otherwise (CI, pipes, files): one plain line per round, no
 * control characters.
 */
export interface RoundProgress {
  round(row: RoundRow, extra?: string): void;
  /** A free-form line (faults, notices) that must not garble the bar. */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Round cap: the bar's total. */
  total: number;
  target?: number;
  stream?: NodeJS.WriteStream;
  /** Force the bar on or off; default: on when the stream is a TTY. */
  tty?: boolean;
  /** Print nothing at all. */
  quiet?: boolean;
}

export function formatPct(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined ? '   -  ' : `${(v * 100).toFixed(digits)}%`;
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** The one-line description of a closed round, used by both modes. */
export function roundLine(r: RoundRow, extra?: string): string {
  const head = `round ${String(r.round).padStart(4)}`;
  const tail = extra ? `  ${extra}` : '';
  if (r.failed) return `${head}  FAILED (${(r.durationMs / 1000).toFixed(1)} s, global model unchanged)${tail}`;
  const loss = r.loss === null ? '-' : r.loss.toFixed(4);
  return (
    `${head}  test acc ${formatPct(r.accuracy)}  loss ${loss}  clients ${String(r.participants).padStart(3)}  ` +
    `${(r.durationMs / 1000).toFixed(2)} s  up ${formatBytes(r.bytesUp)} down ${formatBytes(r.bytesDown)}${tail}`
  );
}

export function createProgress(o: ProgressOptions): RoundProgress {
  const stream = o.stream ?? process.stdout;
  if (o.quiet) return { round() {}, log() {}, stop() {} };
  const tty = o.tty ?? Boolean(stream.isTTY);
  if (!tty) {
    return {
      round: (r, extra) => void stream.write(roundLine(r, extra) + '\n'),
      log: (line) => void stream.write(line + '\n'),
      stop() {},
    };
  }
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: ' {bar} round {value}/{total} | acc {acc} | best {best}{target} | {duration_formatted}',
      barsize: 20,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  const targetText = o.target === undefined ? '' : ` (target ${formatPct(o.target, 1)})`;
  const bar = multi.create(o.total, 0, { acc: formatPct(null), best: formatPct(null), target: targetText });
  let best: number | null = null;
  return {
    round(r, extra) {
      if (r.accuracy !== null) best = best === null ? r.accuracy : Math.max(best, r.accuracy);
      multi.log(roundLine(r, extra) + '\n');
      bar.update(Math.min(r.round, o.total), { acc: formatPct(r.accuracy), best: formatPct(best), target: targetText });
      multi.update(); // render now: buffered log lines would otherwise be lost if stop() comes first
    },
    log(line) {
      multi.log(line + '\n');
      multi.update();
    },
    stop() {
      multi.stop();
    },
  };
}

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CSV_COLUMNS,
  defaultOutDir,
  roundRowFromRecord,
  summarize,
  toCsv,
  writeResults,
  type RoundRow,
} from '../../simulator/src/results.js';
import { logTicks, niceTicks, renderAccuracyChart } from '../../simulator/src/svg-chart.js';

const rows: RoundRow[] = [
  { round: 1, accuracy: 0.81, loss: 0.62, participants: 10, failed: false, durationMs: 1500, bytesUp: 7_960_000, bytesDown: 7_960_000, elapsedMs: 1600 },
  { round: 2, accuracy: null, loss: null, participants: 0, failed: true, durationMs: 60000, bytesUp: 0, bytesDown: 3_980_000, elapsedMs: 61700 },
  { round: 3, accuracy: 0.972, loss: 0.1, participants: 9, failed: false, durationMs: 1400, bytesUp: 7_164_000, bytesDown: 7_960_000, elapsedMs: 63200 },
];

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('result writers', () => {
  it('writes results.json, results.csv and accuracy.svg', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-results-'));
    dirs.push(dir);
    const out = join(dir, 'nested', 'run');
    const summary = summarize(rows, 0.97, 5000, 'target reached');
    const files = await writeResults(out, { config: { clients: 100, model: 'mlp' }, rounds: rows, summary }, { title: 'T', target: 0.97 });

    const json = JSON.parse(await readFile(files.json, 'utf8'));
    expect(json.config).toEqual({ clients: 100, model: 'mlp' });
    expect(json.rounds).toEqual(rows);
    expect(Object.keys(json.rounds[0])).toEqual([...CSV_COLUMNS]);
    expect(json.summary).toMatchObject({ roundsCommitted: 2, roundsFailed: 1, finalAccuracy: 0.972, reachedTargetAt: 3 });

    const csv = (await readFile(files.csv, 'utf8')).trimEnd().split('\n');
    expect(csv[0]).toBe('round,accuracy,loss,participants,failed,durationMs,bytesUp,bytesDown,elapsedMs');
    expect(csv[1]).toBe('1,0.81,0.62,10,false,1500,7960000,7960000,1600');
    expect(csv[2]).toBe('2,,,0,true,60000,0,3980000,61700');
    expect(csv).toHaveLength(4);

    const svg = await readFile(files.svg, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('>Round</text>');
    expect(svg).toContain('>Test accuracy</text>');
    expect(svg).toContain('target 97%');
    expect(svg).toContain('stroke-dasharray');
    expect(svg).toContain('failed round (1)');
  });

  it('builds rows from coordinator round records', () => {
    const done = roundRowFromRecord({
      round: 4,
      state: 'done',
      reported: ['a', 'b', 'c'],
      startedAt: 1000,
      endedAt: 3500,
      trainMetrics: { loss: 0.3, participants: 3 },
      centralMetrics: { accuracy: 0.9, loss: 0.35 },
      bytesUp: 30,
      bytesDown: 40,
    });
    expect(done).toEqual({ round: 4, accuracy: 0.9, loss: 0.35, participants: 3, failed: false, durationMs: 2500, bytesUp: 30, bytesDown: 40, elapsedMs: 0 });
    const fed = roundRowFromRecord({ round: 5, state: 'done', startedAt: 0, endedAt: 1, evalMetrics: { accuracy: 0.5, loss: 1 } });
    expect(fed.accuracy).toBe(0.5);
    const failed = roundRowFromRecord({ round: 6, state: 'failed', startedAt: 0, endedAt: 9, centralMetrics: { accuracy: 0.9 } });
    expect(failed).toMatchObject({ failed: true, accuracy: null, participants: 0, durationMs: 9 });
    const own = roundRowFromRecord({ round: 7, state: 'done', startedAt: 0, endedAt: 1 }, { accuracy: 0.7, loss: 0.8 });
    expect(own).toMatchObject({ accuracy: 0.7, loss: 0.8 });
  });

  it('escapes CSV-free values and names the default out dir by timestamp', () => {
    expect(toCsv([])).toBe(CSV_COLUMNS.join(',') + '\n');
    expect(defaultOutDir(new Date('2026-11-28T13:05:09.123Z'))).toBe(join('runs', '2026-11-28T13-05-09Z'));
  });
});

describe('svg chart', () => {
  it('picks round tick values', () => {
    expect(niceTicks(0, 1, 10)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(niceTicks(0, 87, 10)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80]);
    expect(niceTicks(0.6, 1, 8)).toEqual([0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1]);
  });

  it('draws every series with a legend and escapes text', () => {
    const svg = renderAccuracyChart({
      title: 'IID <vs> shards',
      series: [
        { name: 'IID', points: [{ x: 1, y: 0.8 }, { x: 2, y: 0.9 }] },
        { name: 'shards', points: [{ x: 1, y: 0.5 }] },
      ],
    });
    expect(svg).toContain('IID &lt;vs&gt; shards');
    expect(svg.match(/<path d="M/g)?.length).toBe(2);
    expect(svg).toContain('IID (last 90% @ 2)');
    expect(svg).toContain('shards (last 50% @ 1)');
    expect(svg).not.toContain('NaN');
  });

  it('places the legend so that a long label ends inside the chart, and a short one where it always was', () => {
    const legendX = (name: string) => {
      const svg = renderAccuracyChart({ title: 't', series: [{ name, points: [{ x: 1, y: 0.5 }, { x: 256, y: 0.7085 }] }] });
      const m = new RegExp(`<text x="([0-9.]+)"[^>]*>${name.replace(/[()]/g, '\\$&')} \\(last`).exec(svg);
      return Number(m![1]);
    };
    const long = 'batched, adaptive delay (default)';
    const label = `${long} (last 70.85% @ 256)`;
    // 880 px wide: the label's text, at 7.2 px per character, ends before the right edge.
    expect(legendX(long) + label.length * 7.2).toBeLessThanOrEqual(880);
    expect(legendX('IID')).toBeGreaterThan(legendX(long));
  });

  it('log x axis: 1-2-5 ticks per decade, thinned to decades when there are many; x <= 0 left out', () => {
    expect(logTicks(1, 100)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect(logTicks(0.1, 1000, 6)).toEqual([0.1, 1, 10, 100, 1000]);
    expect(logTicks(0, 10)).toEqual([]);
    const svg = renderAccuracyChart({
      title: 'bytes',
      xScale: 'log10',
      xUnit: 'MB',
      series: [
        { name: 'f32', points: [{ x: 0, y: 0.1 }, { x: 8, y: 0.9 }, { x: 160, y: 0.95 }] },
        { name: 'topk', points: [{ x: 0.16, y: 0.8 }, { x: 3.2, y: 0.93 }] },
      ],
    });
    expect(svg).not.toContain('NaN');
    expect(svg).toContain('f32 (last 95% @ 160 MB)');
    expect(svg).toContain('topk (last 93% @ 3.2 MB)');
    // axis from 0.1 to 1000 (whole decades around 0.16..160): the decade ticks are labelled
    for (const t of ['0.1', '1', '10', '100', '1000']) expect(svg).toContain(`fill="#333">${t}</text>`);
    expect(svg.match(/<path d="M/g)?.length).toBe(2);
  });

  it('renders an empty run without NaN', () => {
    const svg = renderAccuracyChart({ title: 'empty', series: [{ name: 'x', points: [] }], target: 0.97 });
    expect(svg).not.toContain('NaN');
    expect(svg).toContain('target 97%');
  });
});

describe('round progress', () => {
  it('prints one plain line per round when not on a TTY', async () => {
    const { createProgress, roundLine } = await import('../../simulator/src/progress.js');
    const chunks: string[] = [];
    const stream = { isTTY: false, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream;
    const p = createProgress({ total: 3, target: 0.97, stream });
    p.round(rows[0]);
    p.round(rows[1]);
    p.log('note');
    p.stop();
    expect(chunks).toEqual([roundLine(rows[0]) + '\n', roundLine(rows[1]) + '\n', 'note\n']);
    expect(chunks[0]).toContain('round    1  test acc 81.00%  loss 0.6200  clients  10');
    expect(chunks[1]).toContain('FAILED');
    expect(chunks.join('')).not.toMatch(/\x1b\[/);
  });

  it('is silent with quiet', async () => {
    const { createProgress } = await import('../../simulator/src/progress.js');
    const chunks: string[] = [];
    const stream = { isTTY: true, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream;
    const p = createProgress({ total: 3, stream, quiet: true });
    p.round(rows[0]);
    p.stop();
    expect(chunks).toEqual([]);
  });
});

/** Number and time formatting shared by every page (plain text, so a screen reader reads what a chart shows). */
const pad = (n) => String(n).padStart(2, '0');

export function clock(ts) {
  if (ts === null || ts === undefined) return '–';
  const d = new Date(ts);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function dateTime(ts) {
  if (ts === null || ts === undefined) return '–';
  const d = new Date(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ts)}`;
}

export function ago(ts, now = Date.now()) {
  if (!ts) return '–';
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) (n /= 1000), i++;
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

/** A fraction in [0, 1] as a percentage with one decimal. */
export function pct(x) {
  return x === null || x === undefined || Number.isNaN(x) ? '–' : `${(x * 100).toFixed(1)}%`;
}

/** Milliseconds with two decimals (the API rounds to microseconds). */
export function ms(x) {
  return x === null || x === undefined ? '–' : `${x.toFixed(2)} ms`;
}

export function num(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (Number.isInteger(x)) return String(x);
  return x.toFixed(digits);
}

/**
 * A one-line progress bar for long CLI work, redrawn in place (carriage return) on `write`
 * (stderr), at most every 100 ms and always at the end, which ends the line.
 */
export function progressBar(write: (s: string) => void, label: string, width = 30): (done: number, total: number, note?: string) => void {
  let last = 0;
  return (done, total, note = '') => {
    const now = Date.now();
    const end = done >= total;
    if (!end && now - last < 100) return;
    last = now;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(frac * width);
    write(`\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}% ${note}${end ? '\n' : ''}`);
  };
}

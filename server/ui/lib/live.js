import { useEffect, useRef, useState } from '../vendor/htm-preact.mjs';
import { openLive } from './api.js';

/**
 * One live stream per console, shared by every page: pages subscribe with useLive (frames as
 * they come) or usePulse (the latest pulse, re-rendering on each).
 */
const subs = new Set();
let lastPulse = null;
let state = 'connecting';
let close = null;

export function startLive() {
  stopLive();
  close = openLive(
    (event, data) => {
      if (event === 'pulse') lastPulse = data;
      for (const f of [...subs]) f(event, data);
    },
    (s) => {
      state = s;
      for (const f of [...subs]) f('state', s);
    },
  );
}

export function stopLive() {
  close?.();
  close = null;
  lastPulse = null;
  state = 'connecting';
}

/** Calls `fn(event, data)` for every frame while the component is mounted (always the latest fn). */
export function useLive(fn) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    const f = (e, d) => ref.current(e, d);
    subs.add(f);
    return () => subs.delete(f);
  }, []);
}

/** The latest pulse ({ at, tasks }) and the channel's state. */
export function usePulse() {
  const [, tick] = useState(0);
  useLive((e) => (e === 'pulse' || e === 'state') && tick((n) => n + 1));
  return { pulse: lastPulse, state };
}

/** Runs `load` now and every `ms` while mounted (and when `deps` change). */
export function usePoll(load, ms, deps = []) {
  const ref = useRef(load);
  ref.current = load;
  useEffect(() => {
    let stop = false;
    let timer = null;
    const run = async () => {
      try {
        await ref.current();
      } catch {
        /* shown by the page's own error state */
      }
      if (!stop) timer = setTimeout(run, ms);
    };
    run();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, deps);
}

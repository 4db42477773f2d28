import { createRng, deriveSeed, gaussian } from './rng.js';

/**
 * Heterogeneous device speeds (`--device-speed lognormal:MU:SIGMA`): each device gets a fixed
 * multiplier m = exp(MU + SIGMA * N(0, 1)) on its local training time, drawn from the run's seed
 * and the device's index only, so a sync run and an async run with the same seed and device count
 * see the same fleet. A device holds its report until m times its job time has passed since its
 * instruction arrived (the job time is `--device-time-ms` when given, a nominal time for fetching the
 * model and training that keeps the simulator's shared CPU out of the comparison, else the measured
 * one); m < 1 cannot make the real job faster than it was.
 */
export interface DeviceSpeed {
  kind: 'lognormal';
  mu: number;
  sigma: number;
}

export function parseDeviceSpeed(s: string): DeviceSpeed {
  const m = /^lognormal:(-?\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(s);
  if (!m) throw new Error('--device-speed must look like lognormal:MU:SIGMA, e.g. lognormal:0:1');
  return { kind: 'lognormal', mu: Number(m[1]), sigma: Number(m[2]) };
}

/** One multiplier per device, in device order. */
export function drawSpeeds(count: number, speed: DeviceSpeed, seed: number): number[] {
  const rng = createRng(deriveSeed(seed, 4242));
  return Array.from({ length: count }, () => Math.exp(speed.mu + speed.sigma * gaussian(rng)));
}

/** How long a device whose job started at `startedAt` (its instruction arrived) still waits before reporting (ms). */
export function holdMs(multiplier: number, startedAt: number, now: number, nominalMs: number | undefined): number {
  const trained = now - startedAt;
  return Math.max(0, multiplier * (nominalMs ?? trained) - trained);
}

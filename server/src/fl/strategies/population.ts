import { z } from 'zod';
import type { Rng } from '../rng.js';
import { FedAvg, type FedAvgParams } from './fedavg.js';

/**
 * N, the number of devices in the population, for the drift-correcting strategies (SCAFFOLD's
 * c <- c + |S|/N mean(dc_i), FedDyn's h <- h - alpha |P|/N mean(delta)): the plan's `populationSize`
 * when given, otherwise the number of eligible (connected) devices when the round's devices were
 * chosen. Never below the number of results aggregated, so |S|/N <= 1.
 */
export const PopulationParam = z.number().int().min(1).max(1e9).optional();

export class Population {
  private eligible = 0;
  constructor(private readonly fixed: number | undefined) {}

  /** Called from configureFit with the round's eligible devices. */
  observe(available: number): void {
    this.eligible = available;
  }

  /** N for a round that aggregated `results` reports. */
  size(results: number): number {
    return Math.max(this.fixed ?? this.eligible, results, 1);
  }
}

/** Base of SCAFFOLD and FedDyn: FedAvg's selection, noting N at each configureFit. */
export abstract class PopulationAware extends FedAvg {
  protected readonly population: Population;

  constructor(params: FedAvgParams, populationSize: number | undefined) {
    super(params);
    this.population = new Population(populationSize);
  }

  override configureFit(round: number, available: readonly string[], rng: Rng): string[] {
    this.population.observe(available.length);
    return super.configureFit(round, available, rng);
  }
}

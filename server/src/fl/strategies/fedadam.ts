import { FedOpt } from './fed-opt.js';

/** FedAdam (Reddi et al. 2020, "Adaptive Federated Optimization"): v <- beta2 * v + (1 - beta2) * D^2. */
export class FedAdam extends FedOpt {
  override readonly name: string = 'fedadam';
  protected secondMoment(v: number, d: number): number {
    return this.opts.beta2 * v + (1 - this.opts.beta2) * d * d;
  }
}

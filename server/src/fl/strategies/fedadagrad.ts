import { FedOpt } from './fed-opt.js';

/** FedAdagrad (Reddi et al. 2020, "Adaptive Federated Optimization"): v <- v + D^2 (beta2 unused). */
export class FedAdagrad extends FedOpt {
  override readonly name: string = 'fedadagrad';
  protected secondMoment(v: number, d: number): number {
    return v + d * d;
  }
}

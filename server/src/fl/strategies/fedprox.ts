import { FedAvg, type FedAvgParams } from './fedavg.js';

/**
 * FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks"). The server side is
 * FedAvg; the algorithm lives on the devices, which minimise
 *   F_k(w) + (mu / 2) * ||w - w_global||^2
 * with mu taken from the plan's `proximalMu` (sent to every device in its ClientPlan). The
 * factory requires mu > 0 (with mu = 0 this is FedAvg) and reads it from the plan so that the
 * server and devices never disagree.
 */
export class FedProx extends FedAvg {
  override readonly name: string = 'fedprox';
  constructor(
    params: FedAvgParams,
    readonly proximalMu: number,
  ) {
    super(params);
  }
}

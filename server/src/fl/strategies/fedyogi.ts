import { FedOpt } from './fed-opt.js';

/**
 * FedYogi (Reddi et al. 2020, "Adaptive Federated Optimization"; Yogi: Zaheer et al. 2018):
 * v <- v - (1 - beta2) * D^2 * sign(v - D^2). v grows at most additively, so it adapts more
 * slowly than Adam's when gradients shrink.
 */
export class FedYogi extends FedOpt {
  override readonly name: string = 'fedyogi';
  protected secondMoment(v: number, d: number): number {
    const d2 = d * d;
    return v - (1 - this.opts.beta2) * d2 * Math.sign(v - d2);
  }
}

// Weighted random: each available endpoint is chosen with probability weight / total weight.
// Stateless across picks apart from a reused scratch buffer; good when many sidecars balance the
// same backends, since their choices do not synchronise the way round-robin cursors can.
import type { BalancedEndpoint, Balancer } from './balancer.js';
import { EligibleEndpoints } from './eligible-endpoints.js';

export class RandomBalancer<E extends BalancedEndpoint> implements Balancer<E> {
  readonly #random: () => number;
  readonly #eligible = new EligibleEndpoints();

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  pick(endpoints: readonly E[], avoid?: E): E | undefined {
    const eligible = this.#eligible;
    eligible.collect(endpoints, avoid);
    if (eligible.count === 0) return undefined;
    if (eligible.count === 1) return endpoints[eligible.indexAt(0)];
    const k = eligible.positionAtWeight(endpoints, this.#random() * eligible.totalWeight, -1);
    return endpoints[eligible.indexAt(k)];
  }
}

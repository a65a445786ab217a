// Least-request by power of two choices (Mitzenmacher; Envoy's LEAST_REQUEST, linkerd's P2C):
// draw two distinct endpoints, send to the one with fewer requests in flight. O(n), no global sort,
// and random enough that many sidecars do not all pile onto the same "least loaded" endpoint.
// Weights: both candidates are drawn by weighted random (without replacement) and compared by
// inflight / weight, as Envoy's active_request_bias = 1 does; on a tie the first drawn wins, so with
// idle endpoints the choice is exactly proportional to weight (3:1 → 75/25).
import type { BalancedEndpoint, Balancer } from './balancer.js';
import { EligibleEndpoints } from './eligible-endpoints.js';

export class LeastRequestBalancer<E extends BalancedEndpoint> implements Balancer<E> {
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
    const first = eligible.positionAtWeight(endpoints, this.#random() * eligible.totalWeight, -1);
    const a = endpoints[eligible.indexAt(first)]!;
    const second = eligible.positionAtWeight(endpoints, this.#random() * (eligible.totalWeight - a.weight), first);
    const b = endpoints[eligible.indexAt(second)]!;
    // Cross-multiplied inflight/weight comparison: no division, exact for integers.
    return b.inflight * a.weight < a.inflight * b.weight ? b : a;
  }
}

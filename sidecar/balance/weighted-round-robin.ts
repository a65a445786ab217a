// nginx's smooth weighted round-robin (ngx_http_upstream_round_robin.c): each pick adds every
// available endpoint's weight to its `current`, takes the largest, and subtracts the total from it.
// 3:1 gives A A B A rather than A A A B, so the lighter endpoint is not starved in bursts.
// State is keyed by address, so endpoints may come, go or be rebuilt between picks.
import type { BalancedEndpoint, Balancer } from './balancer.js';
import { isAvoided } from './is-avoided.js';

export class WeightedRoundRobinBalancer<E extends BalancedEndpoint> implements Balancer<E> {
  #current = new Map<string, number>();
  #lastSet: readonly E[] | undefined;

  pick(endpoints: readonly E[], avoid?: E): E | undefined {
    if (endpoints !== this.#lastSet) this.#forgetRemoved(endpoints);
    let total = 0;
    let best: E | undefined;
    let bestCurrent = -Infinity;
    let avoided: E | undefined;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (!e.isAvailable()) continue;
      if (avoided === undefined && isAvoided(e, avoid)) {
        avoided = e;
        continue;
      }
      const current = (this.#current.get(e.address) ?? 0) + e.weight;
      this.#current.set(e.address, current);
      total += e.weight;
      if (current > bestCurrent) {
        best = e;
        bestCurrent = current;
      }
    }
    if (best === undefined) return avoided; // only the endpoint to avoid (or nothing) is available
    this.#current.set(best.address, bestCurrent - total);
    return best;
  }

  /** Drops state of addresses no longer in the set; runs only when the array identity changes. */
  #forgetRemoved(endpoints: readonly E[]): void {
    this.#lastSet = endpoints;
    if (this.#current.size <= endpoints.length) return;
    const present = new Set<string>();
    for (const e of endpoints) present.add(e.address);
    for (const address of this.#current.keys()) if (!present.has(address)) this.#current.delete(address);
  }
}

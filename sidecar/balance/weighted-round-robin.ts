// nginx's smooth weighted round-robin (ngx_http_upstream_round_robin.c): each pick adds every
// available endpoint's weight to its `current`, takes the largest, and subtracts the total from it.
// 3:1 gives A A B A rather than A A A B, so the lighter endpoint is not starved in bursts.
// `current` lives in an array parallel to the endpoint array (fast picks); when a different array
// comes in (new snapshot) it is carried over by address, so state survives rebuilt sets. Callers
// should pass the same array between snapshots: a new array per pick works but costs a remap.
import type { BalancedEndpoint, Balancer } from './balancer.js';
import { isAvoided } from './is-avoided.js';

export class WeightedRoundRobinBalancer<E extends BalancedEndpoint> implements Balancer<E> {
  #set: readonly E[] = [];
  #addresses: string[] = [];
  #current = new Float64Array(0);

  pick(endpoints: readonly E[], avoid?: E): E | undefined {
    if (endpoints !== this.#set) this.#adopt(endpoints);
    const current = this.#current;
    let total = 0;
    let best = -1;
    let avoidedAt = -1;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (!e.isAvailable()) continue;
      if (avoidedAt < 0 && isAvoided(e, avoid)) {
        avoidedAt = i;
        continue;
      }
      current[i]! += e.weight;
      total += e.weight;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    if (best < 0) return avoidedAt < 0 ? undefined : endpoints[avoidedAt]; // only the avoided one is available
    current[best]! -= total;
    return endpoints[best];
  }

  /** Carries `current` over by address to a new endpoint array; new addresses start at 0. */
  #adopt(endpoints: readonly E[]): void {
    const byAddress = new Map<string, number>();
    for (let i = 0; i < this.#addresses.length; i++) byAddress.set(this.#addresses[i]!, this.#current[i]!);
    this.#current = new Float64Array(endpoints.length);
    this.#addresses = endpoints.map((e, i) => {
      this.#current[i] = byAddress.get(e.address) ?? 0;
      return e.address;
    });
    this.#set = endpoints;
  }
}

// Plain round-robin (nginx/Envoy default). The cursor is an index taken modulo the current length,
// so a set that grows or shrinks between picks keeps rotating instead of failing or restarting.
import type { BalancedEndpoint, Balancer } from './balancer.js';
import { isAvoided } from './is-avoided.js';

export class RoundRobinBalancer<E extends BalancedEndpoint> implements Balancer<E> {
  #next = 0;

  pick(endpoints: readonly E[], avoid?: E): E | undefined {
    const n = endpoints.length;
    if (n === 0) return undefined;
    const start = this.#next % n;
    let avoidedAt = -1;
    for (let i = 0; i < n; i++) {
      const idx = (start + i) % n;
      const e = endpoints[idx]!;
      if (!e.isAvailable()) continue;
      if (avoidedAt < 0 && isAvoided(e, avoid)) {
        avoidedAt = idx;
        continue;
      }
      this.#next = idx + 1;
      return e;
    }
    // Only the endpoint to avoid is available: a retry on it beats no retry at all.
    if (avoidedAt < 0) return undefined;
    this.#next = avoidedAt + 1;
    return endpoints[avoidedAt];
  }
}

// Scratch list of the endpoints a pick may choose from (available, not the one to avoid), kept as
// indices in a buffer reused across picks: random choices need the count and total weight first,
// and calling isAvailable() once per endpoint keeps the passes consistent with each other.
import type { BalancedEndpoint } from './balancer.js';
import { isAvoided } from './is-avoided.js';

export class EligibleEndpoints {
  #indices = new Uint32Array(16);
  /** How many endpoints are eligible after the last collect(). */
  count = 0;
  /** Sum of their weights. */
  totalWeight = 0;

  /**
   * Collects the available endpoints other than `avoid`. When none is, falls back to `avoid` itself
   * if it is in the set and available (a retry on the same endpoint beats none).
   */
  collect(endpoints: readonly BalancedEndpoint[], avoid: BalancedEndpoint | undefined): void {
    if (this.#indices.length < endpoints.length) this.#indices = new Uint32Array(endpoints.length * 2);
    let count = 0;
    let total = 0;
    let avoidedAt = -1;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (!e.isAvailable()) continue;
      if (avoidedAt < 0 && isAvoided(e, avoid)) {
        avoidedAt = i;
        continue;
      }
      this.#indices[count++] = i;
      total += e.weight;
    }
    if (count === 0 && avoidedAt >= 0) {
      this.#indices[count++] = avoidedAt;
      total = endpoints[avoidedAt]!.weight;
    }
    this.count = count;
    this.totalWeight = total;
  }

  /** Index (into the endpoints array) of the k-th eligible endpoint. */
  indexAt(k: number): number {
    return this.#indices[k]!;
  }

  /**
   * The eligible position whose cumulative weight span holds `target` (0 ≤ target < totalWeight),
   * skipping position `skip` (-1 for none). Weighted sampling without building an array.
   */
  positionAtWeight(endpoints: readonly BalancedEndpoint[], target: number, skip: number): number {
    let acc = 0;
    let last = -1;
    for (let k = 0; k < this.count; k++) {
      if (k === skip) continue;
      acc += endpoints[this.#indices[k]!]!.weight;
      last = k;
      if (target < acc) return k;
    }
    return last; // float rounding put target at the very end
  }
}

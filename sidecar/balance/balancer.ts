// The balancer interface the backend stack calls once per attempt, and its factory. The kinds follow
// the usual proxy set (Envoy/nginx/linkerd): round-robin, smooth weighted round-robin, weighted random
// and least-request with power of two choices. All skip endpoints whose breaker says no.
import { meshError } from '../../core/errors.js';
import { LeastRequestBalancer } from './least-request.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';
import { WeightedRoundRobinBalancer } from './weighted-round-robin.js';

export interface BalancedEndpoint {
  readonly address: string;
  readonly weight: number; // ≥ 1
  readonly inflight: number; // requests in flight right now (least-request)
  isAvailable(): boolean; // false when its breaker is open / probes are all taken; side-effect free
}

export interface Balancer<E extends BalancedEndpoint> {
  /** Picks one available endpoint, or undefined when none is available. `avoid` (optional) is an endpoint to avoid if any other is available (retries prefer another endpoint). */
  pick(endpoints: readonly E[], avoid?: E): E | undefined;
}

export type BalancerKind = 'round-robin' | 'weighted-round-robin' | 'random' | 'least-request';

/** One balancer per backend: balancers keep state (cursor, weights, scratch) between picks. */
export function createBalancer<E extends BalancedEndpoint>(kind: BalancerKind, random: () => number = Math.random): Balancer<E> {
  switch (kind) {
    case 'round-robin':
      return new RoundRobinBalancer<E>();
    case 'weighted-round-robin':
      return new WeightedRoundRobinBalancer<E>();
    case 'random':
      return new RandomBalancer<E>(random);
    case 'least-request':
      return new LeastRequestBalancer<E>(random);
    default:
      // Config validation admits only the kinds above; reaching here is a bug in the caller.
      throw meshError('INTERNAL', `unknown load balancer kind "${String(kind satisfies never)}"`, { kind });
  }
}


// One address of one service: its breaker (outlier ejection), in-flight count and connection pool.
// Endpoint objects outlive snapshots when their address and policy are unchanged, so a config push
// neither forgets an open breaker nor drops warm keep-alive connections.
import type { CircuitBreakerPolicy } from '../core/config/normalize.js';
import type { Clock } from '../core/clock.js';
import type { BalancedEndpoint } from './balance/balancer.js';
import { CircuitBreaker, type BreakerState } from './resilience/circuit-breaker.js';
import type { EjectionCap } from './resilience/ejection-cap.js';
import type { UpstreamPool } from './upstream/upstream-pool.js';

export class Endpoint implements BalancedEndpoint {
  readonly service: string;
  readonly address: string;
  weight: number;
  labels: Readonly<Record<string, string>>;
  source: string;
  stale: boolean;
  inflight = 0;
  readonly breaker: CircuitBreaker;
  readonly breakerPolicy: CircuitBreakerPolicy;
  pool: UpstreamPool;

  constructor(init: {
    service: string;
    address: string;
    weight: number;
    labels: Readonly<Record<string, string>>;
    source: string;
    stale?: boolean;
    pool: UpstreamPool;
    breakerPolicy: CircuitBreakerPolicy;
    clock: Clock;
    ejectionCap: EjectionCap;
    onBreakerChange: (ep: Endpoint, from: BreakerState, to: BreakerState) => void;
  }) {
    this.service = init.service;
    this.address = init.address;
    this.weight = init.weight;
    this.labels = init.labels;
    this.source = init.source;
    this.stale = init.stale ?? false;
    this.pool = init.pool;
    this.breakerPolicy = init.breakerPolicy;
    this.breaker = new CircuitBreaker({
      policy: init.breakerPolicy,
      clock: init.clock,
      ejectionCap: init.ejectionCap,
      onStateChange: (from, to) => init.onBreakerChange(this, from, to),
    });
  }

  isAvailable(): boolean {
    return this.breaker.isAvailable();
  }

  describe(): Record<string, unknown> {
    const b = this.breaker.snapshot();
    return {
      address: this.address,
      weight: this.weight,
      labels: this.labels,
      source: this.source,
      stale: this.stale,
      healthy: b.state === 'closed',
      breaker: b.state,
      consecutiveFailures: b.consecutiveFailures,
      ejections: b.ejections,
      inflight: this.inflight,
      pool: this.pool.stats,
    };
  }
}

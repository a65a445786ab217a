// The concrete level of one service inside a snapshot: its endpoints (static + pushed), the shared
// ejection cap, the concurrency limits and the balancer. Backends (a service or a label subset of it)
// are views over these endpoints.
import type { Clock } from '../core/clock.js';
import type { ServiceConfig } from '../core/config/normalize.js';
import type { EndpointRecord } from '../core/snapshot.js';
import type { SidecarObserver } from '../core/telemetry/observer.js';
import { Endpoint } from './endpoint.js';
import { ConcurrencyLimit } from './resilience/concurrency-limit.js';
import { EjectionCap } from './resilience/ejection-cap.js';
import type { PoolRegistry } from './pool-registry.js';

export class ServiceRuntime {
  readonly config: ServiceConfig;
  readonly endpoints: Endpoint[];
  readonly cap: EjectionCap;
  readonly requests: ConcurrencyLimit;
  readonly pending: ConcurrencyLimit;

  constructor(config: ServiceConfig, endpoints: Endpoint[], cap: EjectionCap) {
    this.config = config;
    this.endpoints = endpoints;
    this.cap = cap;
    this.requests = new ConcurrencyLimit(config.limits.maxRequests);
    this.pending = new ConcurrencyLimit(config.limits.maxPending);
  }

  /** Endpoints whose labels include every label of `subset`. */
  subset(subset: Readonly<Record<string, string>> | null): Endpoint[] {
    if (!subset) return this.endpoints;
    const keys = Object.keys(subset);
    return this.endpoints.filter((e) => keys.every((k) => e.labels[k] === subset[k]));
  }

  ejectedCount(): number {
    let n = 0;
    for (const e of this.endpoints) if (e.breaker.state !== 'closed') n++;
    return n;
  }
}

/**
 * Builds a service's endpoints for a new snapshot, reusing the previous snapshot's Endpoint objects
 * (breaker state, in-flight counts, warm pools) when address and policies are unchanged.
 */
export function buildServiceRuntime(
  config: ServiceConfig,
  pushed: readonly EndpointRecord[],
  previous: ServiceRuntime | undefined,
  deps: { clock: Clock; pools: PoolRegistry; observer: SidecarObserver },
): ServiceRuntime {
  const records = new Map<string, { weight: number; labels: Readonly<Record<string, string>>; source: string; stale: boolean }>();
  for (const e of config.endpoints) records.set(e.address, { weight: e.weight, labels: e.labels, source: 'static', stale: false });
  for (const e of pushed) if (!records.has(e.address)) records.set(e.address, { weight: e.weight, labels: e.labels, source: e.source, stale: e.stale ?? false });

  const samePolicy = previous !== undefined && JSON.stringify(previous.config.circuitBreaker) === JSON.stringify(config.circuitBreaker);
  const cap = samePolicy ? previous.cap : new EjectionCap(config.circuitBreaker.maxEjectionPercent);
  const old = new Map(samePolicy ? previous.endpoints.map((e) => [e.address, e]) : []);
  const poolOptions = { connections: config.limits.maxConnectionsPerEndpoint, connectTimeoutMs: config.connectTimeoutMs };

  let runtime: ServiceRuntime | undefined;
  const endpoints: Endpoint[] = [];
  for (const [address, r] of records) {
    const pool = deps.pools.acquire(address, poolOptions);
    const prev = old.get(address);
    if (prev && prev.pool === pool) {
      prev.weight = r.weight;
      prev.labels = r.labels;
      prev.source = r.source;
      prev.stale = r.stale;
      old.delete(address);
      endpoints.push(prev);
      continue;
    }
    endpoints.push(
      new Endpoint({
        service: config.name,
        address,
        weight: r.weight,
        labels: r.labels,
        source: r.source,
        stale: r.stale,
        pool,
        breakerPolicy: config.circuitBreaker,
        clock: deps.clock,
        ejectionCap: cap,
        onBreakerChange: (ep, from, to) => {
          deps.observer.breakerTransition(config.name, ep.address, from, to);
          if (runtime) deps.observer.endpoints(config.name, runtime.endpoints.length, runtime.ejectedCount());
        },
      }),
    );
  }
  // Endpoints that left the set give their ejection back to the shared cap.
  for (const gone of old.values()) gone.breaker.dispose();
  for (const e of previous?.endpoints ?? []) if (!records.has(e.address)) deps.observer.endpointRemoved(config.name, e.address);
  cap.total = endpoints.length;
  runtime = new ServiceRuntime(config, endpoints, cap);
  deps.observer.endpoints(config.name, endpoints.length, runtime.ejectedCount());
  return runtime;
}

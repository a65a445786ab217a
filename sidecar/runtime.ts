// Snapshot → Runtime: everything a request needs, built once and swapped in with one assignment.
// A snapshot that fails to build throws; the caller refuses it (NACK) and keeps the old runtime.
import type { Clock } from '../core/clock.js';
import type { MeshConfig, RetryPolicy } from '../core/config/normalize.js';
import { validateMeshConfig } from '../core/config/parse.js';
import { formatViolation } from '../core/config/violation.js';
import { compose, type Handler } from '../core/handler.js';
import { meshError } from '../core/errors.js';
import type { Snapshot } from '../core/snapshot.js';
import type { SidecarObserver } from '../core/telemetry/observer.js';
import { Backend } from './backend.js';
import { createBalancer } from './balance/balancer.js';
import type { Endpoint } from './endpoint.js';
import { retry } from './layers/retry.js';
import { split } from './layers/split.js';
import { timeout } from './layers/timeout.js';
import type { PoolRegistry } from './pool-registry.js';
import { RetryBudget } from './resilience/retry-budget.js';
import { RouteTable, type CompiledRoute } from './route-table.js';
import { buildServiceRuntime, type ServiceRuntime } from './service-runtime.js';
import type { UpstreamPool } from './upstream/upstream-pool.js';

export interface Runtime {
  readonly snapshot: Readonly<Snapshot>;
  readonly config: MeshConfig;
  readonly routes: RouteTable;
  readonly services: ReadonlyMap<string, ServiceRuntime>;
  readonly pools: ReadonlySet<UpstreamPool>;
  /** Retry budgets by route, handed on to the next runtime like endpoint state. */
  readonly budgets: ReadonlyMap<string, RetryBudget>;
}

export interface RuntimeDeps {
  clock: Clock;
  pools: PoolRegistry;
  observer: SidecarObserver;
  random?: () => number;
}

export function buildRuntime(snapshot: Readonly<Snapshot>, previous: Runtime | undefined, deps: RuntimeDeps): Runtime {
  const parsed = validateMeshConfig(snapshot.config);
  if (!parsed.ok) throw meshError('CONFIG_INVALID', `snapshot ${snapshot.version} is invalid: ${parsed.violations.map((v) => formatViolation(v)).join('; ')}`, { violations: parsed.violations });
  const config = parsed.config;
  const services = new Map<string, ServiceRuntime>();
  for (const [name, svc] of config.services) {
    services.set(name, buildServiceRuntime(svc, snapshot.endpoints[name] ?? [], previous?.services.get(name), deps));
  }

  // One Backend (balancer state) per service + subset, shared by every route that sends there.
  const backends = new Map<string, Backend>();
  const backendFor = (service: string, subset: Readonly<Record<string, string>> | null): Backend => {
    const key = subset ? `${service}{${Object.entries(subset).sort().map(([k, v]) => `${k}=${v}`).join(',')}}` : service;
    let b = backends.get(key);
    if (!b) {
      const svc = services.get(service)!;
      b = new Backend(svc, key, svc.subset(subset), createBalancer<Endpoint>(svc.config.loadBalancer, deps.random), deps.clock, deps.observer);
      backends.set(key, b);
    }
    return b;
  };

  // A budget outlives snapshots while its route and numbers stay the same: a config push or discovery
  // update during an outage must not hand out a fresh allowance of retries.
  const budgets = new Map<string, RetryBudget>();
  const budgetFor = (route: string, addressed: string, p: RetryPolicy): RetryBudget => {
    const key = `${addressed}/${route}|${p.budgetRatio}|${p.budgetMinPerSecond}|${p.budgetWindowMs}`;
    const b = budgets.get(key) ?? previous?.budgets.get(key) ?? new RetryBudget({ ratio: p.budgetRatio, minPerSecond: p.budgetMinPerSecond, windowMs: p.budgetWindowMs }, deps.clock);
    budgets.set(key, b);
    return b;
  };

  const stack = (name: string, addressed: string, backendList: ReadonlyArray<{ service: string; subset: Readonly<Record<string, string>> | null; weight: number }>, timeoutMs: number | null, retryPolicy: RetryPolicy | null): Handler => {
    // The first backend's service gives the defaults a route does not override.
    const primary = services.get(backendList[0]!.service)!.config;
    const policy = retryPolicy ?? primary.retry;
    const terminal = split(
      backendList.map((b) => {
        const backend = backendFor(b.service, b.subset);
        const perTry = (retryPolicy ?? services.get(b.service)!.config.retry).perTryTimeoutMs;
        return { weight: b.weight, handler: (req, ctx) => backend.send(req, ctx, perTry) };
      }),
      deps.random,
    );
    return compose(
      timeout(timeoutMs ?? primary.timeoutMs, deps.clock), // total deadline, retries included
      retry({
        policy,
        budget: budgetFor(name, addressed, policy),
        clock: deps.clock,
        observer: deps.observer,
        service: addressed,
        route: name,
        random: deps.random,
      }), // each try picks a backend and an endpoint again
    )(terminal);
  };

  const hosts = new Map<string, string>();
  for (const svc of config.services.values()) for (const h of svc.hosts) hosts.set(h, svc.name);
  const byService = new Map<string, CompiledRoute[]>();
  const byHost = new Map<string, CompiledRoute[]>();
  for (const r of config.routes) {
    const heaviest = [...r.backends].sort((a, b) => b.weight - a.weight)[0]!;
    const compiled: CompiledRoute = {
      name: r.name,
      service: r.service ?? r.backends[0]!.service,
      match: r,
      handler: stack(r.name, r.service ?? r.host ?? '', r.backends, r.timeoutMs, r.retry),
      upgradeBackend: backendFor(heaviest.service, heaviest.subset),
    };
    const [map, key] = r.service !== null ? [byService, r.service] : [byHost, r.host!];
    map.set(key, [...(map.get(key) ?? []), compiled]);
  }
  for (const svc of config.services.values()) {
    const def: CompiledRoute = {
      name: 'default',
      service: svc.name,
      match: null,
      handler: stack('default', svc.name, [{ service: svc.name, subset: null, weight: 1 }], null, null),
      upgradeBackend: backendFor(svc.name, null),
    };
    byService.set(svc.name, [...(byService.get(svc.name) ?? []), def]);
  }

  const pools = new Set<UpstreamPool>();
  for (const s of services.values()) for (const e of s.endpoints) pools.add(e.pool);
  return Object.freeze({ snapshot, config, routes: new RouteTable(hosts, byService, byHost), services, pools, budgets });
}

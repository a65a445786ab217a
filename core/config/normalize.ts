// Turns a schema-valid config into the normalized model: defaults applied, durations in ms,
// cross-field rules checked. Every violation is collected with its path; nothing stops at the first.
import { isIP } from 'node:net';
import { parseHostPort } from '../address.js';
import { parseDuration } from '../duration.js';
import type { MeshConfigInput, RetryInput, ServiceInput } from './schema.js';
import type { ConfigPath } from './violation.js';

export type LoadBalancerKind = 'round-robin' | 'weighted-round-robin' | 'random' | 'least-request';

export interface EndpointSpec {
  readonly address: string;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly perTryTimeoutMs: number; // 0 = none (only the total deadline)
  readonly onConnectFailure: boolean;
  readonly onReset: boolean;
  readonly onTimeout: boolean;
  readonly statuses: ReadonlySet<number>;
  readonly methods: ReadonlySet<string>;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly budgetRatio: number;
  readonly budgetMinPerSecond: number;
  readonly budgetWindowMs: number;
  readonly maxBufferBytes: number;
  readonly honorRetryAfter: boolean;
}

export interface CircuitBreakerPolicy {
  readonly consecutiveFailures: number; // 0 = off
  readonly failureRate: { readonly threshold: number; readonly windowMs: number; readonly minRequests: number } | null;
  readonly openForMs: number;
  readonly maxOpenForMs: number;
  readonly halfOpenProbes: number;
  readonly maxEjectionPercent: number;
}

export interface LimitsPolicy {
  readonly maxRequests: number;
  readonly maxPending: number;
  readonly maxConnectionsPerEndpoint: number;
}

export interface ServiceConfig {
  readonly name: string;
  readonly hosts: readonly string[];
  readonly endpoints: readonly EndpointSpec[];
  readonly discovery: ServiceInput['discovery'] | null;
  readonly loadBalancer: LoadBalancerKind;
  readonly timeoutMs: number; // 0 = none
  readonly connectTimeoutMs: number;
  readonly retry: RetryPolicy;
  readonly circuitBreaker: CircuitBreakerPolicy;
  readonly limits: LimitsPolicy;
}

export type HeaderMatcher =
  | { readonly name: string; readonly kind: 'exact'; readonly value: string }
  | { readonly name: string; readonly kind: 'prefix'; readonly value: string }
  | { readonly name: string; readonly kind: 'regex'; readonly regex: RegExp }
  | { readonly name: string; readonly kind: 'present'; readonly present: boolean };

export interface RouteConfig {
  readonly name: string;
  readonly service: string | null;
  readonly host: string | null;
  readonly path: string | null;
  readonly pathPrefix: string | null;
  readonly pathRegex: RegExp | null;
  readonly methods: ReadonlySet<string> | null;
  readonly headers: readonly HeaderMatcher[];
  readonly backends: ReadonlyArray<{ readonly service: string; readonly subset: Readonly<Record<string, string>> | null; readonly weight: number }>;
  readonly timeoutMs: number | null;
  readonly retry: RetryPolicy | null;
}

export interface MeshConfig {
  readonly services: ReadonlyMap<string, ServiceConfig>;
  readonly routes: readonly RouteConfig[];
  readonly egressPassthrough: boolean;
  readonly accessLog: { readonly enabled: boolean; readonly sampleRatio: number; readonly minStatus: number };
  readonly tracingSampleRatio: number;
}

export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export const DEFAULTS = {
  timeoutMs: 15_000,
  connectTimeoutMs: 1_000,
  retry: { attempts: 2, on: ['connect-failure', 'reset'], backoffBaseMs: 25, backoffMaxMs: 250, budgetRatio: 0.2, budgetMinPerSecond: 10, budgetWindowMs: 10_000, maxBufferBytes: 64 * 1024 },
  circuitBreaker: { consecutiveFailures: 5, openForMs: 5_000, maxOpenForMs: 60_000, halfOpenProbes: 2, maxEjectionPercent: 100, failureRateWindowMs: 10_000, failureRateMinRequests: 20 },
  limits: { maxRequests: 1024, maxPending: 1024, maxConnectionsPerEndpoint: 64 },
} as const;

export interface RawViolation {
  path: ConfigPath;
  message: string;
}

const ms = (v: string | number | undefined, fallback: number): number => (v === undefined ? fallback : (parseDuration(v) ?? fallback));

function retryPolicy(r: RetryInput | undefined, path: ConfigPath, out: RawViolation[]): RetryPolicy {
  const on = r?.on ?? DEFAULTS.retry.on;
  const statuses = new Set<number>();
  let onConnectFailure = false;
  let onReset = false;
  let onTimeout = false;
  for (const c of on) {
    if (typeof c === 'number') statuses.add(c);
    else if (/^\d{3}$/.test(c)) statuses.add(Number(c));
    else if (c === 'connect-failure') onConnectFailure = true;
    else if (c === 'reset') onReset = true;
    else if (c === 'timeout') onTimeout = true;
    else if (c === 'gateway-error') [502, 503, 504].forEach((s) => statuses.add(s));
    else if (c === '5xx') for (let s = 500; s < 600; s++) statuses.add(s);
    else if (c === 'retriable-4xx') statuses.add(409);
  }
  const backoffBaseMs = ms(r?.backoff?.base, DEFAULTS.retry.backoffBaseMs);
  const backoffMaxMs = ms(r?.backoff?.max, Math.max(DEFAULTS.retry.backoffMaxMs, backoffBaseMs));
  if (backoffMaxMs < backoffBaseMs) out.push({ path: [...path, 'backoff', 'max'], message: `must be at least backoff.base (${backoffBaseMs}ms)` });
  return Object.freeze({
    attempts: r?.attempts ?? DEFAULTS.retry.attempts,
    perTryTimeoutMs: ms(r?.perTryTimeout, 0),
    onConnectFailure,
    onReset,
    onTimeout,
    statuses,
    methods: r?.methods ? new Set(r.methods) : IDEMPOTENT_METHODS,
    backoffBaseMs,
    backoffMaxMs,
    budgetRatio: r?.budget?.ratio ?? DEFAULTS.retry.budgetRatio,
    budgetMinPerSecond: r?.budget?.minPerSecond ?? DEFAULTS.retry.budgetMinPerSecond,
    budgetWindowMs: ms(r?.budget?.window, DEFAULTS.retry.budgetWindowMs),
    maxBufferBytes: r?.maxBufferBytes ?? DEFAULTS.retry.maxBufferBytes,
    honorRetryAfter: r?.honorRetryAfter ?? true,
  });
}

function compileRegex(src: string, path: ConfigPath, out: RawViolation[]): RegExp | null {
  try {
    return new RegExp(src);
  } catch (e) {
    out.push({ path, message: `invalid regular expression: ${(e as Error).message}` });
    return null;
  }
}

/** Normalizes a config that already passed the schema. Returns the model and every cross-field violation. */
export function normalize(input: MeshConfigInput): { config: MeshConfig; violations: RawViolation[] } {
  const out: RawViolation[] = [];
  const services = new Map<string, ServiceConfig>();
  const hostOwner = new Map<string, string>();

  for (const [name, s] of Object.entries(input.services)) {
    const p: ConfigPath = ['services', name];
    const hosts = [name, ...(s.hosts ?? [])].map((h) => h.toLowerCase());
    hosts.forEach((h, i) => {
      const owner = hostOwner.get(h);
      if (owner !== undefined && owner !== name) out.push({ path: i === 0 ? p : [...p, 'hosts', i - 1], message: `host "${h}" already names service "${owner}"` });
      hostOwner.set(h, name);
    });
    const seen = new Set<string>();
    (s.endpoints ?? []).forEach((e, i) => {
      if (seen.has(e.address)) out.push({ path: [...p, 'endpoints', i, 'address'], message: `duplicate endpoint ${e.address}` });
      seen.add(e.address);
      const port = Number(e.address.slice(e.address.lastIndexOf(':') + 1));
      if (port < 1 || port > 65535) out.push({ path: [...p, 'endpoints', i, 'address'], message: `port ${port} is out of range 1-65535` });
    });
    const d = s.discovery?.dns;
    if (d && !d.srv && !d.host) out.push({ path: [...p, 'discovery', 'dns'], message: 'needs either srv or host' });
    if (d?.host && d.port === undefined) out.push({ path: [...p, 'discovery', 'dns', 'port'], message: 'required with host (A/AAAA records carry no port)' });
    if (d?.srv && d.host) out.push({ path: [...p, 'discovery', 'dns'], message: 'give srv or host, not both' });
    (d?.servers ?? []).forEach((srv, i) => {
      // The resolver takes addresses only: a server named by host name could not itself be resolved.
      if (!isIP(parseHostPort(srv)?.host ?? '')) out.push({ path: [...p, 'discovery', 'dns', 'servers', i], message: 'expected an IP address and port such as "127.0.0.1:53" or "[::1]:53"' });
    });
    const consulAddress = s.discovery?.consul?.address;
    if (consulAddress !== undefined && !/^(https?:\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+):\d{1,5}\/?$/.test(consulAddress))
      out.push({ path: [...p, 'discovery', 'consul', 'address'], message: 'expected host:port or http(s)://host:port' });
    if (s.discovery?.consul?.wait !== undefined && ms(s.discovery.consul.wait, 0) > 600_000)
      out.push({ path: [...p, 'discovery', 'consul', 'wait'], message: 'Consul holds a blocking query at most 10m' });
    (s.discovery?.etcd?.endpoints ?? []).forEach((u, i) => {
      if (!/^https?:\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+):\d{1,5}\/?$/.test(u)) out.push({ path: [...p, 'discovery', 'etcd', 'endpoints', i], message: 'expected an etcd client URL such as http://127.0.0.1:2379' });
    });
    if (s.discovery?.etcd?.prefix !== undefined && !s.discovery.etcd.prefix.endsWith('/'))
      out.push({ path: [...p, 'discovery', 'etcd', 'prefix'], message: 'must end with "/" so one service\'s prefix never matches another\'s keys' });
    const cb = s.circuitBreaker;
    const openForMs = ms(cb?.openFor, DEFAULTS.circuitBreaker.openForMs);
    const maxOpenForMs = ms(cb?.maxOpenFor, Math.max(DEFAULTS.circuitBreaker.maxOpenForMs, openForMs));
    if (maxOpenForMs < openForMs) out.push({ path: [...p, 'circuitBreaker', 'maxOpenFor'], message: `must be at least openFor (${openForMs}ms)` });
    const timeoutMs = ms(s.timeout, DEFAULTS.timeoutMs);
    const retry = retryPolicy(s.retry, [...p, 'retry'], out);
    if (timeoutMs > 0 && retry.perTryTimeoutMs > timeoutMs) out.push({ path: [...p, 'retry', 'perTryTimeout'], message: `is longer than the total timeout (${timeoutMs}ms), so it never applies` });
    services.set(
      name,
      Object.freeze({
        name,
        hosts: Object.freeze(hosts),
        endpoints: Object.freeze((s.endpoints ?? []).map((e) => Object.freeze({ address: e.address, weight: e.weight ?? 1, labels: Object.freeze({ ...(e.labels ?? {}) }) }))),
        discovery: s.discovery ?? null,
        loadBalancer: s.loadBalancer ?? 'round-robin',
        timeoutMs,
        connectTimeoutMs: ms(s.connectTimeout, DEFAULTS.connectTimeoutMs),
        retry,
        circuitBreaker: Object.freeze({
          consecutiveFailures: cb?.consecutiveFailures ?? DEFAULTS.circuitBreaker.consecutiveFailures,
          failureRate: cb?.failureRate
            ? Object.freeze({
                threshold: cb.failureRate.threshold,
                windowMs: ms(cb.failureRate.window, DEFAULTS.circuitBreaker.failureRateWindowMs),
                minRequests: cb.failureRate.minRequests ?? DEFAULTS.circuitBreaker.failureRateMinRequests,
              })
            : null,
          openForMs,
          maxOpenForMs,
          halfOpenProbes: cb?.halfOpenProbes ?? DEFAULTS.circuitBreaker.halfOpenProbes,
          maxEjectionPercent: cb?.maxEjectionPercent ?? DEFAULTS.circuitBreaker.maxEjectionPercent,
        }),
        limits: Object.freeze({
          maxRequests: s.limits?.maxRequests ?? DEFAULTS.limits.maxRequests,
          maxPending: s.limits?.maxPending ?? DEFAULTS.limits.maxPending,
          maxConnectionsPerEndpoint: s.limits?.maxConnectionsPerEndpoint ?? DEFAULTS.limits.maxConnectionsPerEndpoint,
        }),
      }),
    );
  }

  const routeNames = new Set<string>();
  const routes: RouteConfig[] = (input.routes ?? []).map((r, i) => {
    const p: ConfigPath = ['routes', i];
    if (routeNames.has(r.name)) out.push({ path: [...p, 'name'], message: `duplicate route name "${r.name}"` });
    routeNames.add(r.name);
    const m = r.match;
    if (m.service !== undefined && !services.has(m.service)) out.push({ path: [...p, 'match', 'service'], message: `unknown service "${m.service}"` });
    if (m.service === undefined && m.host === undefined) out.push({ path: [...p, 'match'], message: 'needs service or host: a route answers for something the caller addressed' });
    const pathKinds = [m.path, m.pathPrefix, m.pathRegex].filter((x) => x !== undefined).length;
    if (pathKinds > 1) out.push({ path: [...p, 'match'], message: 'give at most one of path, pathPrefix, pathRegex' });
    let total = 0;
    r.backends.forEach((b, j) => {
      total += b.weight ?? 1;
      if (!services.has(b.service)) out.push({ path: [...p, 'backends', j, 'service'], message: `unknown service "${b.service}"` });
    });
    if (total === 0) out.push({ path: [...p, 'backends'], message: 'weights add up to 0: no backend would ever be chosen' });
    const headers: HeaderMatcher[] = Object.entries(m.headers ?? {}).map(([rawName, hm]) => {
      const name = rawName.toLowerCase();
      if (typeof hm === 'string') return { name, kind: 'exact', value: hm };
      const given = [hm.exact, hm.prefix, hm.regex, hm.present].filter((x) => x !== undefined).length;
      if (given !== 1) out.push({ path: [...p, 'match', 'headers', rawName], message: 'give exactly one of exact, prefix, regex, present' });
      if (hm.exact !== undefined) return { name, kind: 'exact', value: hm.exact };
      if (hm.prefix !== undefined) return { name, kind: 'prefix', value: hm.prefix };
      if (hm.regex !== undefined) return { name, kind: 'regex', regex: compileRegex(hm.regex, [...p, 'match', 'headers', rawName, 'regex'], out) ?? /$^/ };
      return { name, kind: 'present', present: hm.present ?? true };
    });
    return Object.freeze({
      name: r.name,
      service: m.service ?? null,
      host: m.host?.toLowerCase() ?? null,
      path: m.path ?? null,
      pathPrefix: m.pathPrefix ?? null,
      pathRegex: m.pathRegex !== undefined ? compileRegex(m.pathRegex, [...p, 'match', 'pathRegex'], out) : null,
      methods: m.methods ? new Set(m.methods) : null,
      headers: Object.freeze(headers),
      backends: Object.freeze(r.backends.map((b) => Object.freeze({ service: b.service, subset: b.subset ? Object.freeze({ ...b.subset }) : null, weight: b.weight ?? 1 }))),
      timeoutMs: r.timeout !== undefined ? ms(r.timeout, 0) : null,
      retry: r.retry !== undefined ? retryPolicy(r.retry, [...p, 'retry'], out) : null,
    });
  });

  const t = input.telemetry;
  return {
    config: Object.freeze({
      services,
      routes: Object.freeze(routes),
      egressPassthrough: input.egress?.passthrough ?? false,
      // Off unless configured (Envoy and Linkerd users expect access logs to be opt-in: a line per request
      // costs more CPU than the rest of the telemetry together, see bench/RESULTS.md).
      accessLog: Object.freeze({ enabled: t?.accessLog !== undefined ? (t.accessLog.enabled ?? true) : false, sampleRatio: t?.accessLog?.sampleRatio ?? 1, minStatus: t?.accessLog?.minStatus ?? 0 }),
      tracingSampleRatio: t?.tracing?.sampleRatio ?? 0.01,
    }),
    violations: out,
  };
}

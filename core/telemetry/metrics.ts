// Prometheus metrics of a sidecar and of the control plane (prom-client; only core/telemetry imports it).
// Label cardinality is bounded: service/route/backend come from the mesh config and are capped by
// BoundedLabel anyway; no raw paths, authorities or per-request values. Endpoint addresses appear only
// on the breaker-state gauge, where "which endpoint is ejected" is the point; they are capped too and
// bounded by the mesh's own endpoint count (Envoy's per-host stats make the same trade).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { BreakerState, Direction } from './observer.js';
import { BoundedLabel } from './bounded-label.js';
import { BucketHistogram, type HistogramSeries } from './bucket-histogram.js';

export { Registry };

/** Seconds; from sub-millisecond loopback hops to the 15 s default request timeout and beyond. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Push → ACK: a sidecar swaps a snapshot in milliseconds; a slow one shows up in the upper buckets. */
export const PUSH_LATENCY_BUCKETS_SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const BREAKER_STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** "2xx".."5xx" for an HTTP status; "none" when no response status exists (0, or out of range). */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100)]! : 'none';
}

/** What a finished request contributes to the request metrics. */
export interface RequestSample {
  direction: Direction;
  service: string | undefined;
  route: string | undefined;
  backend: string | undefined;
  status: number;
  errorCode: string | undefined;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

interface RequestSeries {
  requests: Counter.Internal;
  duration: HistogramSeries;
  bytesIn: Counter.Internal;
  bytesOut: Counter.Internal;
  /** Counted on the request path, handed to prom-client at scrape time (collect), which spares
   * every request prom-client's label validation and hashing for three counters. */
  pendingRequests: number;
  pendingBytesIn: number;
  pendingBytesOut: number;
}

/**
 * prom-client's default process/Node metrics minus the three gauges named `*_total`, which
 * `promtool check metrics` rejects (non-counters must not end in _total).
 */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}

export class SidecarMetrics {
  readonly registry: Registry;
  #services = new BoundedLabel(256);
  #routes = new BoundedLabel(512);
  #backends = new BoundedLabel(512);
  #endpoints = new BoundedLabel(1024);
  #reasons = new BoundedLabel(32);
  #errorCodes = new BoundedLabel(64);
  /** Children looked up once per label combination, so the hot path does one Map lookup, not prom-client's label hashing ×4. */
  #series = new Map<string, RequestSeries>();
  #last: { direction: Direction; service: string | undefined; route: string | undefined; backend: string | undefined; cls: string; errorCode: string | undefined; series: RequestSeries } | undefined;

  #requests: Counter<string>;
  #duration: BucketHistogram;
  #bytesIn: Counter<string>;
  #bytesOut: Counter<string>;
  #retries: Counter<string>;
  #budgetRefusals: Counter<string>;
  #breakerState: Gauge<string>;
  #breakerTransitions: Counter<string>;
  #ejections: Counter<string>;
  #endpointsTotal: Gauge<string>;
  #endpointsEjected: Gauge<string>;
  #overflows: Counter<string>;
  #configInfo: Gauge<string>;
  #configApplied: Counter<string>;
  #configRefused: Counter<string>;

  constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    const requestLabels = ['direction', 'service', 'route', 'backend', 'status_class', 'error_code'];
    const series = this.#series;
    this.#requests = new Counter({
      name: 'meshlet_requests_total',
      help: 'Requests handled by the sidecar, by direction, service, route, backend, response class and meshlet error code (empty when none).',
      labelNames: requestLabels,
      registers,
      collect: () => {
        for (const s of series.values()) if (s.pendingRequests > 0) (s.requests.inc(s.pendingRequests), (s.pendingRequests = 0));
      },
    });
    // No error_code on the histogram: latency by class is what dashboards plot, and it keeps the series count down.
    this.#duration = new BucketHistogram({ name: 'meshlet_request_duration_seconds', help: 'Time from receiving a request to the end of its response, retries included.', labelNames: ['direction', 'service', 'route', 'backend', 'status_class'], buckets: LATENCY_BUCKETS_SECONDS, registers });
    this.#bytesIn = new Counter({
      name: 'meshlet_request_bytes_total',
      help: 'Request bytes received from clients.',
      labelNames: ['direction', 'service'],
      registers,
      collect: () => {
        for (const s of series.values()) if (s.pendingBytesIn > 0) (s.bytesIn.inc(s.pendingBytesIn), (s.pendingBytesIn = 0));
      },
    });
    this.#bytesOut = new Counter({
      name: 'meshlet_response_bytes_total',
      help: 'Response bytes sent to clients.',
      labelNames: ['direction', 'service'],
      registers,
      collect: () => {
        for (const s of series.values()) if (s.pendingBytesOut > 0) (s.bytesOut.inc(s.pendingBytesOut), (s.pendingBytesOut = 0));
      },
    });
    this.#retries = new Counter({ name: 'meshlet_retries_total', help: 'Retries attempted, by the condition that caused them.', labelNames: ['service', 'route', 'reason'], registers });
    this.#budgetRefusals = new Counter({ name: 'meshlet_retry_budget_exhausted_total', help: 'Retries the retry budget refused.', labelNames: ['service', 'route'], registers });
    this.#breakerState = new Gauge({ name: 'meshlet_circuit_breaker_state', help: 'Circuit breaker state per endpoint: 0 closed, 1 half-open, 2 open (ejected).', labelNames: ['service', 'endpoint'], registers });
    this.#breakerTransitions = new Counter({ name: 'meshlet_circuit_breaker_transitions_total', help: 'Circuit breaker state changes.', labelNames: ['service', 'from', 'to'], registers });
    this.#ejections = new Counter({ name: 'meshlet_endpoint_ejections_total', help: 'Endpoints ejected (breaker opened).', labelNames: ['service'], registers });
    this.#endpointsTotal = new Gauge({ name: 'meshlet_endpoints', help: 'Endpoints known per service.', labelNames: ['service'], registers });
    this.#endpointsEjected = new Gauge({ name: 'meshlet_endpoints_ejected', help: 'Endpoints currently ejected per service.', labelNames: ['service'], registers });
    this.#overflows = new Counter({ name: 'meshlet_overflows_total', help: 'Requests refused by a concurrency limit (kind: requests or pending).', labelNames: ['service', 'kind'], registers });
    this.#configInfo = new Gauge({ name: 'meshlet_config_info', help: 'The applied snapshot: always 1, labelled with its version and hash prefix.', labelNames: ['version', 'hash'], registers });
    this.#configApplied = new Counter({ name: 'meshlet_config_applied_total', help: 'Snapshots applied.', registers });
    this.#configRefused = new Counter({ name: 'meshlet_config_refused_total', help: 'Snapshots refused (NACKed); the old one stayed in force.', registers });
  }

  request(s: RequestSample): void {
    const cls = statusClass(s.status);
    // Steady traffic repeats one combination: the last one is checked by identity before any key is built.
    const last = this.#last;
    let series: RequestSeries;
    if (last !== undefined && last.direction === s.direction && last.service === s.service && last.route === s.route && last.backend === s.backend && last.cls === cls && last.errorCode === s.errorCode) series = last.series;
    else {
      series = this.#seriesFor(s, cls);
      this.#last = { direction: s.direction, service: s.service, route: s.route, backend: s.backend, cls, errorCode: s.errorCode, series };
    }
    series.pendingRequests++;
    series.pendingBytesIn += s.bytesIn;
    series.pendingBytesOut += s.bytesOut;
    series.duration.observe(s.durationMs / 1000);
  }

  #seriesFor(s: RequestSample, cls: string): RequestSeries {
    const direction = s.direction;
    const service = this.#services.value(s.service ?? '');
    const route = this.#routes.value(s.route ?? '');
    const backend = this.#backends.value(s.backend ?? '');
    const code = this.#errorCodes.value(s.errorCode ?? '');
    const key = `${direction}\u0000${service}\u0000${route}\u0000${backend}\u0000${cls}\u0000${code}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = {
        requests: this.#requests.labels(direction, service, route, backend, cls, code),
        duration: this.#duration.series(direction, service, route, backend, cls),
        bytesIn: this.#bytesIn.labels(direction, service),
        bytesOut: this.#bytesOut.labels(direction, service),
        pendingRequests: 0,
        pendingBytesIn: 0,
        pendingBytesOut: 0,
      };
      // Zero-valued series appear at once, so a scrape never misses a combination just seen.
      series.requests.inc(0);
      this.#series.set(key, series);
    }
    return series;
  }

  /**
   * Exposes a count kept elsewhere (the access log's dropped lines) as a counter read at scrape time,
   * so the request path pays nothing for it.
   */
  accessLogDropped(read: () => number): void {
    let seen = 0;
    const counter: Counter<string> = new Counter({
      name: 'meshlet_access_log_dropped_total',
      help: 'Access log lines dropped because the destination could not keep up or failed.',
      registers: [this.registry],
      collect: () => {
        const now = read();
        if (now > seen) counter.inc(now - seen);
        seen = now;
      },
    });
  }

  retry(service: string, route: string, reason: string): void {
    this.#retries.labels(this.#services.value(service), this.#routes.value(route), this.#reasons.value(reason)).inc();
  }

  retryBudgetExhausted(service: string, route: string): void {
    this.#budgetRefusals.labels(this.#services.value(service), this.#routes.value(route)).inc();
  }

  breakerTransition(service: string, endpoint: string, from: BreakerState, to: BreakerState): void {
    const svc = this.#services.value(service);
    this.#breakerState.labels(svc, this.#endpoints.value(endpoint)).set(BREAKER_STATE_VALUE[to]);
    this.#breakerTransitions.labels(svc, from, to).inc();
    if (to === 'open' && from !== 'open') this.#ejections.labels(svc).inc();
  }

  /** An endpoint left the service: drop its breaker series so departed addresses do not linger. */
  endpointRemoved(service: string, endpoint: string): void {
    this.#breakerState.remove(this.#services.value(service), endpoint);
    this.#endpoints.forget(endpoint);
  }

  overflow(service: string, kind: 'requests' | 'pending'): void {
    this.#overflows.labels(this.#services.value(service), kind).inc();
  }

  endpoints(service: string, total: number, ejected: number): void {
    const svc = this.#services.value(service);
    this.#endpointsTotal.labels(svc).set(total);
    this.#endpointsEjected.labels(svc).set(ejected);
  }

  configApplied(version: string, hash: string): void {
    // One series only: the snapshot in force.
    this.#configInfo.reset();
    this.#configInfo.labels(version, hash.slice(0, 12)).set(1);
    this.#configApplied.inc();
  }

  configRefused(): void {
    this.#configRefused.inc();
  }
}

/** Control-plane metrics; push latency is measured from sending a snapshot to its ACK/NACK. */
export class ControlPlaneMetrics {
  readonly registry: Registry;
  #clock: Clock;
  /** Send time of the push each sidecar has not answered yet. A newer push replaces an older one. */
  #pending = new Map<string, number>();
  #connected: Gauge<string>;
  #sidecars: Gauge<string>;
  #collectors: Array<() => void> = [];
  #pushes: Counter<string>;
  #responses: Counter<string>;
  #pushLatency: Histogram<string>;
  #configVersion: Gauge<string>;
  #configWrites: Counter<string>;

  constructor(registry: Registry, clock: Clock = systemClock) {
    this.registry = registry;
    this.#clock = clock;
    const registers = [registry];
    const collectors = this.#collectors;
    this.#connected = new Gauge({
      name: 'meshlet_cp_connected_sidecars',
      help: 'Sidecars with an open watch stream.',
      registers,
      collect: () => {
        for (const c of collectors) c();
      },
    });
    this.#sidecars = new Gauge({ name: 'meshlet_cp_sidecars', help: 'Known sidecars by sync status (synced, stale, refused, no-config).', labelNames: ['status'], registers });
    this.#pushes = new Counter({ name: 'meshlet_cp_pushes_total', help: 'Snapshots pushed to sidecars (only sent when the snapshot hash changed).', registers });
    this.#responses = new Counter({ name: 'meshlet_cp_push_responses_total', help: 'Sidecar answers to pushes: result="ack" (applied) or "nack" (refused).', labelNames: ['result'], registers });
    this.#pushLatency = new Histogram({ name: 'meshlet_cp_push_ack_duration_seconds', help: 'Time from sending a snapshot to the sidecar\'s ACK or NACK.', labelNames: ['result'], buckets: PUSH_LATENCY_BUCKETS_SECONDS, registers });
    this.#configVersion = new Gauge({ name: 'meshlet_cp_config_version', help: 'The current mesh config version number.', registers });
    this.#configWrites = new Counter({ name: 'meshlet_cp_config_versions_total', help: 'Config versions written, by kind (apply or rollback).', labelNames: ['kind'], registers });
    // Zero-valued series exist from the start, so rate() works before the first NACK.
    this.#responses.labels('ack');
    this.#responses.labels('nack');
  }

  connectedSidecars(n: number): void {
    this.#connected.set(n);
  }

  /**
   * Reads connected sidecars and their sync status from the pusher at scrape time (nothing to call
   * on the hot path): `createControlPlaneMetrics(cp.metrics).trackSyncStates(cp.pusher)`.
   */
  trackSyncStates(source: { readonly connectedCount: number; states(): ReadonlyArray<{ status: string }> }): void {
    const connected = this.#connected;
    const bySync = this.#sidecars;
    this.#collectors.push(() => {
      connected.set(source.connectedCount);
      const counts: Record<string, number> = { synced: 0, stale: 0, refused: 0, 'no-config': 0 };
      for (const s of source.states()) counts[s.status] = (counts[s.status] ?? 0) + 1;
      bySync.reset();
      for (const [status, n] of Object.entries(counts)) bySync.labels(status).set(n);
    });
  }

  pushSent(sidecar: string): void {
    this.#pushes.inc();
    this.#pending.set(sidecar, this.#clock.now());
  }

  pushAcked(sidecar: string): void {
    this.#answered(sidecar, 'ack');
  }

  pushRefused(sidecar: string): void {
    this.#answered(sidecar, 'nack');
  }

  /** The sidecar went away; an unanswered push is not a latency sample. */
  sidecarGone(sidecar: string): void {
    this.#pending.delete(sidecar);
  }

  configVersion(version: number, kind: 'apply' | 'rollback' | 'load' = 'apply'): void {
    this.#configVersion.set(version);
    if (kind !== 'load') this.#configWrites.labels(kind).inc();
  }

  #answered(sidecar: string, result: 'ack' | 'nack'): void {
    this.#responses.labels(result).inc();
    const sentAt = this.#pending.get(sidecar);
    if (sentAt === undefined) return;
    this.#pending.delete(sidecar);
    this.#pushLatency.labels(result).observe((this.#clock.now() - sentAt) / 1000);
  }
}

/** Control-plane metrics registered on `registry` (with the clean process subset when `processMetrics`). */
export function createControlPlaneMetrics(registry: Registry, opts: { clock?: Clock; processMetrics?: boolean } = {}): ControlPlaneMetrics {
  if (opts.processMetrics ?? true) registerProcessMetrics(registry);
  return new ControlPlaneMetrics(registry, opts.clock);
}

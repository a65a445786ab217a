// The SidecarObserver the sidecar reports to: Prometheus metrics, OpenTelemetry traces and access logs
// composed behind the one interface of observer.ts. Tracing and access logs are optional; metrics always
// run (the admin /metrics serves the registry).
import type { RequestInfo } from '../handler.js';
import { AccessLog } from './access-log.js';
import { Registry, registerProcessMetrics, SidecarMetrics } from './metrics.js';
import type { AttemptTelemetry, BreakerState, RequestEnd, RequestStart, RequestTelemetry, SidecarObserver, TelemetrySettings } from './observer.js';
import type { RequestTrace, Tracing } from './tracing.js';

export interface SidecarObserverOptions {
  /** Metrics are registered here; serve `await registry.metrics()` with `registry.contentType`. */
  registry: Registry;
  /** Undefined: tracing off (traceparent headers then pass through untouched). */
  tracing?: Tracing | undefined;
  /** Undefined: no access log. */
  accessLog?: AccessLog | undefined;
  /** The local service: the service label of inbound requests that carry none. */
  service: string;
}

const noopAttempt: AttemptTelemetry = { end: () => {} };
// version, trace id (not all zeros, as W3C has it), the rest unchecked: only the id is logged.
const CALLER_TRACEPARENT = /^[\da-f]{2}-(?!0{32})[\da-f]{32}-/;
const CLOSE_EXPORT_MS = 2_000;

export interface ObservedSidecar extends SidecarObserver {
  readonly metrics: SidecarMetrics;
  readonly registry: Registry;
}

export function createSidecarObserver(opts: SidecarObserverOptions): ObservedSidecar {
  const metrics = new SidecarMetrics(opts.registry);
  const { tracing, accessLog, service } = opts;
  if (accessLog !== undefined) metrics.accessLogDropped(() => accessLog.dropped);

  class ObservedRequest implements RequestTelemetry {
    #start: RequestStart;
    #trace: RequestTrace | undefined;

    constructor(start: RequestStart, trace: RequestTrace | undefined) {
      this.#start = start;
      this.#trace = trace;
    }

    // An unsampled trace writes the same traceparent on every attempt, so the request's own headers
    // can carry it; a sampled one names a new client span per attempt and needs a copy each time.
    get injectsHeaders(): boolean {
      return this.#trace?.sampled === true;
    }

    get traceId(): string | undefined {
      if (this.#trace !== undefined) return this.#trace.traceId;
      // Tracing off: the caller's W3C trace id still correlates access log lines, when it is one (the
      // access log writes it unescaped).
      const tp = this.#start.headers.traceparent;
      const v = Array.isArray(tp) ? tp[0] : tp;
      return v !== undefined && CALLER_TRACEPARENT.test(v) ? v.slice(3, 35) : undefined;
    }

    attemptStarted(attempt: number, endpoint: string, headers: RequestStart['headers']): AttemptTelemetry {
      return this.#trace === undefined ? noopAttempt : this.#trace.attemptStarted(attempt, endpoint, headers);
    }

    end(e: RequestEnd): void {
      const s = this.#start;
      const info: RequestInfo = e.info;
      const svc = info.service ?? (s.direction === 'inbound' ? service : undefined);
      metrics.request({ direction: s.direction, service: svc, route: info.route, backend: info.backend, status: e.status, errorCode: info.errorCode, durationMs: e.durationMs, bytesIn: e.bytesIn, bytesOut: e.bytesOut });
      if (accessLog !== undefined && accessLog.wants(e.status, info.errorCode)) {
        accessLog.write({
          direction: s.direction,
          method: s.method,
          authority: s.authority,
          path: s.path,
          status: e.status,
          errorCode: info.errorCode,
          service: svc,
          route: info.route,
          endpoint: info.endpoint,
          attempts: info.attempts,
          durationMs: e.durationMs,
          bytesIn: e.bytesIn,
          bytesOut: e.bytesOut,
          traceId: this.traceId,
        });
      }
      this.#trace?.end(e);
    }
  }

  return {
    metrics,
    registry: opts.registry,
    requestStarted: (s) => new ObservedRequest(s, tracing?.start(s)),
    retry: (svc, route, reason) => metrics.retry(svc, route, reason),
    retryBudgetExhausted: (svc, route) => metrics.retryBudgetExhausted(svc, route),
    breakerTransition: (svc: string, endpoint: string, from: BreakerState, to: BreakerState) => metrics.breakerTransition(svc, endpoint, from, to),
    overflow: (svc, kind) => metrics.overflow(svc, kind),
    endpointRemoved: (svc, endpoint) => metrics.endpointRemoved(svc, endpoint),
    endpoints: (svc, total, ejected) => metrics.endpoints(svc, total, ejected),
    configApplied: (version, hash) => metrics.configApplied(version, hash),
    configRefused: () => metrics.configRefused(),
    telemetryConfigured: (t: TelemetrySettings) => {
      tracing?.setSampleRatio(t.tracingSampleRatio);
      accessLog?.configure(t.accessLog);
    },
    close: async () => {
      // An unreachable trace collector must not hold the sidecar's exit: spans get CLOSE_EXPORT_MS.
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_EXPORT_MS)).unref());
      await Promise.all([tracing ? Promise.race([tracing.shutdown().catch(() => {}), deadline]) : undefined, accessLog?.close()]);
      clearTimeout(timer);
    },
  };
}

export interface SidecarTelemetryOptions {
  service: string;
  /** `--access-log FILE`; stdout when undefined. */
  accessLogFile?: string | undefined;
  /** false: no access log at all (the mesh config can also turn it off). */
  accessLog?: boolean;
  /** OTEL_* variables are read from here (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** prom-client's process/Node metrics (the promtool-clean subset); default true. */
  processMetrics?: boolean;
}

/**
 * Everything a sidecar needs, from its flags and the OTEL_* environment. Throws CONFIG_INVALID on a
 * malformed OTEL_* variable or an access log file that cannot be opened.
 */
export async function createSidecarTelemetry(opts: SidecarTelemetryOptions): Promise<ObservedSidecar> {
  const registry = new Registry();
  if (opts.processMetrics ?? true) registerProcessMetrics(registry);
  const env = opts.env ?? process.env;
  // OpenTelemetry (~7 MB and ~0.4 s of start-up) is loaded only when an exporter endpoint is set.
  const wantsTracing = Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
  const tracing = wantsTracing ? (await import('./tracing.js')).Tracing.fromEnv({ service: opts.service, env }) : undefined;
  const accessLog = opts.accessLog === false ? undefined : new AccessLog({ destination: opts.accessLogFile ?? 1 });
  return createSidecarObserver({ registry, tracing, accessLog, service: opts.service });
}

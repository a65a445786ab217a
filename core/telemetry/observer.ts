// The sidecar reports what happens through this one interface; metrics (prom-client), tracing
// (OpenTelemetry) and access logs implement it in core/telemetry. The data path never imports
// them directly, so a bare sidecar (noopObserver) pays nothing for telemetry it does not use.
import type { Headers, RequestInfo } from '../handler.js';

export type Direction = 'inbound' | 'outbound';
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface RequestStart {
  direction: Direction;
  method: string;
  authority: string;
  path: string;
  /** Incoming headers (for trace context extraction: traceparent, b3). */
  headers: Headers;
  startedAt: number; // performance.now()
}

export interface RequestEnd {
  status: number;
  info: RequestInfo;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

/** Opaque per-request telemetry state (e.g. the span), created at start and handed back at end. */
export interface RequestTelemetry {
  /** Whether attemptStarted() writes into the headers it is given (the caller then copies them per attempt). */
  readonly injectsHeaders: boolean;
  /** Headers to add to the request sent upstream for this attempt (traceparent). */
  attemptStarted(attempt: number, endpoint: string, headers: Headers): AttemptTelemetry;
  end(e: RequestEnd): void;
  readonly traceId?: string;
}

export interface AttemptTelemetry {
  end(status: number | undefined, errorCode: string | undefined): void;
}

export interface SidecarObserver {
  requestStarted(s: RequestStart): RequestTelemetry;
  retry(service: string, route: string, reason: string): void;
  retryBudgetExhausted(service: string, route: string): void;
  breakerTransition(service: string, endpoint: string, from: BreakerState, to: BreakerState): void;
  overflow(service: string, kind: 'requests' | 'pending'): void;
  /** An endpoint left the service's set: its per-endpoint series go away. */
  endpointRemoved(service: string, endpoint: string): void;
  endpoints(service: string, total: number, ejected: number): void;
  configApplied(version: string, hash: string): void;
  configRefused(version: string, reason: string): void;
  /** Telemetry settings of the snapshot just applied (MeshConfig fits: accessLog, tracingSampleRatio). */
  telemetryConfigured(t: TelemetrySettings): void;
  /** Flushes queued spans and access log lines; call once on shutdown. */
  close(): Promise<void>;
}

export interface TelemetrySettings {
  readonly accessLog: { readonly enabled: boolean; readonly sampleRatio: number; readonly minStatus: number };
  readonly tracingSampleRatio: number;
}

const noopAttempt: AttemptTelemetry = { end: () => {} };
const noopRequest: RequestTelemetry = { injectsHeaders: false, attemptStarted: () => noopAttempt, end: () => {} };

export const noopObserver: SidecarObserver = {
  requestStarted: () => noopRequest,
  retry: () => {},
  retryBudgetExhausted: () => {},
  breakerTransition: () => {},
  overflow: () => {},
  endpointRemoved: () => {},
  endpoints: () => {},
  configApplied: () => {},
  configRefused: () => {},
  telemetryConfigured: () => {},
  close: async () => {},
};

// One handler type and one layer type (go-kit endpoint middleware, tower layer, undici interceptor).
// Stacks are composed once per snapshot; the request path only calls the prebuilt handler.
import type { Readable } from 'node:stream';
import type { RequestTelemetry } from './telemetry/observer.js';

export type Headers = Record<string, string | string[] | undefined>;

export interface MeshRequest {
  readonly method: string;
  /** Origin-form target: path and query, as received. */
  readonly path: string;
  /** host[:port] the client named (Host header, proxy URI or upstream port's service). */
  readonly authority: string;
  /** Lower-cased names, hop-by-hop headers already removed. Layers may add/replace entries. */
  headers: Headers;
  /** The streamed body, or null for none. Replaced by `bufferedBody` when the retry layer buffered it. */
  body: Readable | null;
  bufferedBody?: Buffer;
  /** Whether the request body is known to be empty (no content-length > 0 and no transfer-encoding). */
  readonly bodyless: boolean;
}

export interface MeshResponse {
  readonly status: number;
  /** Lower-cased names, as received (hop-by-hop included). */
  readonly headers: Headers;
  /**
   * The same headers as a flat [name, value, …] list in the order and case received, when the
   * response came off the wire: relayed as is, without building and re-walking an object.
   */
  readonly rawHeaders?: readonly string[];
  /** Whoever drops a response must call body.discard() so the upstream connection is released. */
  readonly body: ResponseBody | null;
  /** The endpoint that produced it (host:port). */
  readonly endpoint?: string;
}

/** Where a response body is relayed to: a node:http ServerResponse fits. */
export interface BodySink {
  write(chunk: Buffer): boolean;
  end(): void;
  destroy(err?: Error): void;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * A response body on its way from an upstream. Exactly one of relay() or discard() is called;
 * until then the upstream is paused after the first chunk, so nothing piles up.
 */
export interface ResponseBody {
  /** Streams the rest of the body into `sink` with backpressure; ends it at the end, destroys it on error. */
  relay(sink: BodySink): void;
  /** Drops the body, freeing the upstream connection (read off when small, aborted otherwise). */
  discard(): void;
  /** Runs `fn` once when the body is finished: relayed to the end, failed, or discarded. */
  onDone(fn: (err?: Error) => void): void;
  /** Body bytes handed to the sink so far. */
  readonly relayedBytes: number;
}

/** Per-request facts gathered for metrics, access logs and traces. Mutated as the request progresses. */
export interface RequestInfo {
  service?: string;
  route?: string;
  backend?: string;
  endpoint?: string;
  attempts: number;
  retries: number;
  errorCode?: string;
}

/**
 * What the data path needs of a cancellation signal. An AbortSignal fits; the sidecar uses a plain
 * object (sidecar/upstream/attempt-signal.ts) because `new AbortController()` costs ~7 µs on Node 20.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface RequestContext {
  /**
   * Aborts when the client disconnects. The deadline does not abort it: each attempt arms its own
   * timer from `deadline`, and the retry layer checks it before backing off.
   */
  readonly signal: CancelSignal;
  /** Clock time (ms) by which the whole request must be done; Infinity when none. */
  deadline: number;
  /** 1 for the first try, 2 for the first retry… */
  attempt: number;
  readonly info: RequestInfo;
  /** Per-request telemetry (span, metrics timing) from the SidecarObserver; attempts report to it. */
  telemetry?: RequestTelemetry;
}

export type Handler = (req: MeshRequest, ctx: RequestContext) => Promise<MeshResponse>;
export type Layer = (next: Handler) => Handler;

/** compose(a, b, c)(terminal): `a` is outermost, read top to bottom like the wiring. */
export function compose(...layers: Layer[]): (terminal: Handler) => Handler {
  return (terminal) => layers.reduceRight<Handler>((next, layer) => layer(next), terminal);
}

// Distributed tracing with OpenTelemetry JS, exported over OTLP/HTTP: protobuf by default, as the
// OTLP exporter spec has it (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf), or JSON (http/json).
// Off unless an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT). W3C traceparent/tracestate is read and written; B3 (single or
// multi header) is accepted on input. Sampling is decided here, before any span object exists, so an
// unsampled request costs a header parse or two ids and one string (still propagated with flags 00,
// so the next sidecar makes the same decision instead of sampling the trace on its own). A sampled
// request is recorded as plain span records (span-record.ts), which the export worker turns into
// OpenTelemetry spans for the SDK's batch processor and OTLP exporter: the request path runs none of
// the SDK's span code, which at 1 % sampling ran too rarely to be optimised (~150k instructions a
// sampled request against ~10k for the records; bench/RESULTS.md, "Telemetry overhead").
//
// Span kinds follow what Envoy/Istio sidecars emit: the inbound request is a SERVER span, the outbound
// request a CLIENT span, and every attempt (try) a CLIENT child span whose id goes upstream in
// traceparent, so the peer's SERVER span hangs under the very try that reached it.
import { randomFillSync } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { B3Propagator } from '@opentelemetry/propagator-b3';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import { parseHostPort } from '../address.js';
import { meshError } from '../errors.js';
import type { Headers } from '../handler.js';
import type { Direction, RequestEnd, RequestStart } from './observer.js';
import { hasZeroId, newSpanId, type SpanRecord, type SpanSink } from './span-record.js';
import { WorkerSpanSink } from './worker-span-sink.js';

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerKind = (typeof SAMPLERS)[number];

export const DEFAULT_SAMPLE_RATIO = 0.01;

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** The tracing settings the standard OTEL_* variables give; undefined when tracing is off. */
export interface TracingEnv {
  sampler: SamplerKind;
  /** OTEL_TRACES_SAMPLER_ARG when set: it overrides the mesh config's ratio on this sidecar. */
  ratio: number | undefined;
  serviceName: string | undefined;
  /** OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. */
  protocol: OtlpProtocol;
}

/** Reads OTEL_* variables; throws CONFIG_INVALID naming the variable when one is malformed. */
export function tracingEnv(env: NodeJS.ProcessEnv = process.env): TracingEnv | undefined {
  const bad = (variable: string, expected: string) =>
    meshError('CONFIG_INVALID', `environment variable ${variable}="${env[variable]}": expected ${expected}`, { variable, value: env[variable], expected });
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return undefined;
  const exporter = (env.OTEL_TRACES_EXPORTER ?? 'otlp').trim().toLowerCase();
  if (exporter === 'none') return undefined;
  if (exporter !== 'otlp') throw bad('OTEL_TRACES_EXPORTER', '"otlp" or "none"');
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint) return undefined;
  for (const v of ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT']) {
    const s = env[v]?.trim();
    if (s && !/^https?:\/\/[^/\s]+/.test(s)) throw bad(v, 'an http:// or https:// URL');
  }
  const protocolVariable = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = env[protocolVariable]?.trim() || 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw bad(protocolVariable, `"http/protobuf" or "http/json"${protocol === 'grpc' ? ' (meshlet does not ship the gRPC exporter; a collector takes OTLP/HTTP on port 4318)' : ''}`);
  }
  const samplerName = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_traceidratio').trim().toLowerCase();
  if (!(SAMPLERS as readonly string[]).includes(samplerName)) throw bad('OTEL_TRACES_SAMPLER', SAMPLERS.join(', '));
  let ratio: number | undefined;
  const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  if (arg) {
    ratio = Number(arg);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw bad('OTEL_TRACES_SAMPLER_ARG', 'a number from 0 to 1');
  }
  return { sampler: samplerName as SamplerKind, ratio, serviceName: env.OTEL_SERVICE_NAME?.trim() || undefined, protocol: protocol as OtlpProtocol };
}

/** Per-request tracing state handed back by Tracing.start(). */
export interface RequestTrace {
  readonly traceId: string;
  readonly sampled: boolean;
  /** Writes traceparent (and tracestate) into the upstream request's headers. */
  attemptStarted(attempt: number, endpoint: string, headers: Headers): AttemptTrace;
  end(e: RequestEnd): void;
}

export interface AttemptTrace {
  end(status: number | undefined, errorCode: string | undefined): void;
}

interface Parent {
  traceId: string;
  spanId: string;
  sampled: boolean;
  /** B3 without a sampling decision: the sidecar decides, as for a new trace. */
  deferred: boolean;
  traceState: string | undefined;
  /** The W3C header as received, forwarded as-is when this sidecar records nothing. */
  traceparent: string | undefined;
}

const noopAttempt: AttemptTrace = { end: () => {} };

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

// A new root context (no parent, not sampled) is a slice of a pool of ready-made traceparents:
// `00-<32 hex trace id>-<16 hex span id>-00`, 55 characters each, made from 4 KiB of CSPRNG bytes
// at a time (170 contexts). The unsampled hot path then has no native call, no concatenation and no
// string to flatten when the header is written: the traceparent is one slice and the trace id another
// of the same flat string (one toString('hex') per id cost ~80 ns; four concatenations and the
// check against all zeros, ~1k instructions). W3C forbids all-zero ids: a pool with an all-zero
// 8-byte word (odds 2^-55 a refill) is drawn again, so no id can be all zeros.
const ROOT_BYTES = 24; // a trace id's 16 bytes and a span id's 8
const ROOT_CHARS = 55;
const ROOTS_PER_POOL = 170;
const rootPoolBuffer = new ArrayBuffer(ROOT_BYTES * ROOTS_PER_POOL);
const rootPoolBytes = Buffer.from(rootPoolBuffer);
const rootPoolWords = new Uint32Array(rootPoolBuffer);
let rootPool = '';
let rootOffset = 0;

function refillRootPool(): void {
  do randomFillSync(rootPoolBytes);
  while (hasZeroId(rootPoolWords));
  const hex = rootPoolBytes.toString('hex');
  const parts = new Array<string>(ROOTS_PER_POOL);
  for (let i = 0; i < ROOTS_PER_POOL; i++) {
    const at = i * ROOT_BYTES * 2;
    parts[i] = `00-${hex.slice(at, at + 32)}-${hex.slice(at + 32, at + 48)}-00`;
  }
  rootPool = parts.join('');
  rootOffset = 0;
}

/** A traceparent for a new, unsampled trace (flags 00): random ids, neither all zeros. */
export function newRootTraceparent(): string {
  if (rootOffset === rootPool.length) refillRootPool();
  return rootPool.slice(rootOffset, (rootOffset += ROOT_CHARS));
}

const b3 = new B3Propagator();
const headerGetter = {
  get: (carrier: Headers, key: string) => carrier[key],
  keys: (carrier: Headers) => Object.keys(carrier),
};

/** The trace context the caller sent: W3C traceparent first, then B3 single (`b3`) or multi (`x-b3-*`). */
export function extractParent(headers: Headers): Parent | undefined {
  const tp = first(headers.traceparent);
  if (tp !== undefined) {
    const sc = parseTraceParent(tp);
    if (sc !== null) {
      return { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED, deferred: false, traceState: first(headers.tracestate), traceparent: tp };
    }
  }
  const single = first(headers.b3);
  if (single === undefined && headers['x-b3-traceid'] === undefined) return undefined;
  const sc = trace.getSpanContext(b3.extract(ROOT_CONTEXT, headers, headerGetter));
  if (sc === undefined || !trace.isSpanContextValid(sc)) return undefined;
  const deferred = single !== undefined ? single.split('-').length === 2 : headers['x-b3-sampled'] === undefined && headers['x-b3-flags'] === undefined;
  return { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED, deferred, traceState: undefined, traceparent: undefined };
}

export interface TracingOptions {
  /** Where finished span records go: WorkerSpanSink (fromEnv), or ProcessorSink (span-export.ts) in process. */
  sink: SpanSink;
  sampler?: SamplerKind;
  /** Fixed ratio (OTEL_TRACES_SAMPLER_ARG); when undefined the mesh config's ratio applies. */
  ratioOverride?: number;
  /** The mesh config's telemetry.tracing.sampleRatio (default 0.01); changed with setSampleRatio(). */
  sampleRatio?: number;
  /** Randomness of root sampling decisions (tests). */
  random?: () => number;
}

export class Tracing {
  readonly sampler: SamplerKind;
  #ratioOverride: number | undefined;
  #configRatio: number;
  #sink: SpanSink;
  #random: () => number;

  constructor(opts: TracingOptions) {
    this.sampler = opts.sampler ?? 'parentbased_traceidratio';
    this.#ratioOverride = opts.ratioOverride;
    this.#configRatio = opts.sampleRatio ?? DEFAULT_SAMPLE_RATIO;
    this.#random = opts.random ?? Math.random;
    this.#sink = opts.sink;
  }

  /** Tracing configured by the OTEL_* environment, or undefined when no OTLP endpoint is set. */
  static fromEnv(opts: { service: string; env?: NodeJS.ProcessEnv; sampleRatio?: number }): Tracing | undefined {
    const env = opts.env ?? process.env;
    const te = tracingEnv(env);
    if (te === undefined) return undefined;
    // The worker's exporter reads the endpoint, headers, compression and timeout from the same variables,
    // its batch processor OTEL_BSP_*, its resource OTEL_RESOURCE_ATTRIBUTES.
    const sink = new WorkerSpanSink({ protocol: te.protocol, serviceName: te.serviceName ?? opts.service });
    return new Tracing({ sink, sampler: te.sampler, ratioOverride: te.ratio, sampleRatio: opts.sampleRatio });
  }

  /** The ratio new traces are sampled at. */
  get sampleRatio(): number {
    return this.#ratioOverride ?? this.#configRatio;
  }

  /** From the mesh config (telemetry.tracing.sampleRatio); OTEL_TRACES_SAMPLER_ARG, when set, still wins. */
  setSampleRatio(ratio: number): void {
    if (!(ratio >= 0 && ratio <= 1)) throw meshError('CONFIG_INVALID', `tracing sample ratio ${ratio}: expected a number from 0 to 1`, { ratio });
    this.#configRatio = ratio;
  }

  start(s: RequestStart): RequestTrace {
    const parent = extractParent(s.headers);
    if (!this.#decide(parent)) return new UnsampledTrace(parent);
    return new SampledTrace(this.#sink, s, parent);
  }

  /** Resolves when the spans of requests ended so far have been exported (or failed to be). */
  async forceFlush(): Promise<void> {
    await this.#sink.forceFlush();
  }

  /** Exports what is queued, then stops. */
  async shutdown(): Promise<void> {
    await this.#sink.shutdown();
  }

  #decide(parent: Parent | undefined): boolean {
    switch (this.sampler) {
      case 'always_on':
        return true;
      case 'always_off':
        return false;
      case 'traceidratio':
        return parent !== undefined ? traceIdBelow(parent.traceId, this.sampleRatio) : this.#random() < this.sampleRatio;
      default: {
        if (parent !== undefined && !parent.deferred) return parent.sampled;
        if (this.sampler === 'parentbased_always_on') return true;
        if (this.sampler === 'parentbased_always_off') return false;
        return parent !== undefined ? traceIdBelow(parent.traceId, this.sampleRatio) : this.#random() < this.sampleRatio;
      }
    }
  }
}

/** Deterministic ratio decision on a trace id's low 56 bits (random in W3C level 2 ids), like TraceIdRatioBased. */
function traceIdBelow(traceId: string, ratio: number): boolean {
  return parseInt(traceId.slice(18), 16) / 2 ** 56 < ratio;
}

function pathOnly(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** Not recorded: only the context travels on (the caller's, or a fresh trace id with flags 00). */
class UnsampledTrace implements RequestTrace {
  readonly traceId: string;
  readonly sampled = false;
  #traceparent: string;
  #tracestate: string | undefined;

  constructor(parent: Parent | undefined) {
    if (parent === undefined) {
      this.#traceparent = newRootTraceparent();
      this.traceId = this.#traceparent.slice(3, 35);
    } else {
      this.traceId = parent.traceId;
      this.#traceparent = parent.traceparent ?? `00-${parent.traceId}-${parent.spanId}-${parent.sampled ? '01' : '00'}`;
      this.#tracestate = parent.traceState;
    }
  }

  attemptStarted(_attempt: number, _endpoint: string, headers: Headers): AttemptTrace {
    headers.traceparent = this.#traceparent;
    if (this.#tracestate !== undefined) headers.tracestate = this.#tracestate;
    return noopAttempt;
  }

  end(): void {}
}

// What the SDK made of a span before: the same names, kinds, attributes and statuses, now as records.
function record(traceId: string, spanId: string, parentSpanId: string | undefined, parentRemote: boolean, traceState: string | undefined, name: string, kind: SpanKind, start: number, attributes: SpanRecord['attributes']): SpanRecord {
  return { traceId, spanId, parentSpanId, parentRemote, traceState, name, kind, start, end: 0, attributes, status: SpanStatusCode.UNSET, statusMessage: undefined };
}

class SampledTrace implements RequestTrace {
  readonly sampled = true;
  readonly traceId: string;
  readonly #sink: SpanSink;
  readonly #start: RequestStart;
  readonly #path: string;
  readonly #span: SpanRecord;
  /** server.address and server.port of the authority, shared by the request span and every attempt. */
  readonly #server: SpanRecord['attributes'];

  constructor(sink: SpanSink, s: RequestStart, parent: Parent | undefined) {
    this.#sink = sink;
    this.#start = s;
    const root = parent === undefined ? newRootTraceparent() : undefined;
    this.traceId = parent?.traceId ?? root!.slice(3, 35);
    const hp = parseHostPort(s.authority, '');
    this.#server = hp && hp.port ? { [ATTR_SERVER_ADDRESS]: hp.host || s.authority, [ATTR_SERVER_PORT]: hp.port } : { [ATTR_SERVER_ADDRESS]: hp?.host || s.authority };
    const path = (this.#path = pathOnly(s.path));
    const attributes = { [ATTR_HTTP_REQUEST_METHOD]: s.method, [ATTR_URL_PATH]: path, [ATTR_URL_SCHEME]: 'http', ...this.#server, 'meshlet.direction': s.direction };
    const spanId = root !== undefined ? root.slice(36, 52) : newSpanId();
    const kind = s.direction === 'inbound' ? SpanKind.SERVER : SpanKind.CLIENT;
    this.#span = record(this.traceId, spanId, parent?.spanId, parent !== undefined, parent?.traceState, s.method, kind, s.startedAt, attributes);
  }

  attemptStarted(attempt: number, endpoint: string, headers: Headers): AttemptTrace {
    const s = this.#start;
    const parent = this.#span;
    const peer = parseHostPort(endpoint, '');
    const attributes: SpanRecord['attributes'] = { [ATTR_HTTP_REQUEST_METHOD]: s.method, [ATTR_URL_FULL]: `http://${s.authority}${this.#path}`, ...this.#server };
    if (peer) {
      attributes[ATTR_NETWORK_PEER_ADDRESS] = peer.host;
      attributes[ATTR_NETWORK_PEER_PORT] = peer.port;
    }
    if (attempt > 1) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = attempt - 1;
    attributes['meshlet.endpoint'] = endpoint;
    attributes['meshlet.attempt'] = attempt;
    const span = record(parent.traceId, newSpanId(), parent.spanId, false, parent.traceState, s.method, SpanKind.CLIENT, performance.now(), attributes);
    headers.traceparent = `00-${span.traceId}-${span.spanId}-01`;
    if (span.traceState !== undefined) headers.tracestate = span.traceState;
    return {
      end: (status, errorCode) => {
        span.end = performance.now();
        if (status !== undefined && status > 0) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
        // Client spans: 4xx and 5xx are errors of this call (OTel HTTP semconv).
        const failed = errorCode !== undefined || status === undefined || status >= 400;
        if (errorCode !== undefined) attributes['meshlet.error_code'] = errorCode;
        if (failed) {
          attributes[ATTR_ERROR_TYPE] = errorCode ?? (status !== undefined ? String(status) : '_OTHER');
          span.status = SpanStatusCode.ERROR;
          span.statusMessage = errorCode;
        }
        this.#sink.push(span);
      },
    };
  }

  end(e: RequestEnd): void {
    const span = this.#span;
    const a = span.attributes;
    const info = e.info;
    const method = this.#start.method;
    const direction: Direction = this.#start.direction;
    span.end = performance.now();
    span.name = info.route ? `${method} ${info.route}` : info.service ? `${method} ${info.service}` : method;
    if (e.status > 0) a[ATTR_HTTP_RESPONSE_STATUS_CODE] = e.status;
    if (info.service !== undefined) a['meshlet.service'] = info.service;
    if (info.route !== undefined) a['meshlet.route'] = info.route;
    if (info.backend !== undefined) a['meshlet.backend'] = info.backend;
    if (info.endpoint !== undefined) a['meshlet.endpoint'] = info.endpoint;
    a['meshlet.attempts'] = info.attempts;
    a['http.request.body.size'] = e.bytesIn;
    a['http.response.body.size'] = e.bytesOut;
    if (info.errorCode !== undefined) a['meshlet.error_code'] = info.errorCode;
    // Server spans fail on 5xx only (a 4xx is the caller's problem); client spans on 4xx too.
    const failed = info.errorCode !== undefined || e.status >= (direction === 'inbound' ? 500 : 400) || e.status === 0;
    if (failed) {
      a[ATTR_ERROR_TYPE] = info.errorCode ?? String(e.status);
      span.status = SpanStatusCode.ERROR;
      span.statusMessage = info.errorCode;
    }
    this.#sink.push(span);
  }
}

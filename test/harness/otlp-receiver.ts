// A real OTLP/HTTP trace receiver for end-to-end tests: a node:http server on 127.0.0.1 (port 0)
// taking `POST /v1/traces` in either OTLP/HTTP encoding, protobuf (`application/x-protobuf`, the
// spec's default) or JSON (`application/json`), gzip accepted. No collector, Jaeger or Zipkin can be
// installed here; this is the real wire. The protobuf side decodes the wire format by hand, the
// fields of opentelemetry-proto's trace.proto that the tests read (field numbers cited below).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { waitFor } from './wait.js';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  /** The resource's service.name. */
  service: string;
  attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  startNs: bigint;
  endNs: bigint;
  /** The OTLP/HTTP encoding the span arrived in. */
  encoding: 'protobuf' | 'json';
}

export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;

export interface OtlpReceiver {
  /** http://127.0.0.1:PORT — give it as OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** The headers of every export request taken, in order (each request may carry many spans). */
  readonly headers: http.IncomingHttpHeaders[];
  waitForSpans(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };

function plain(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return '';
}

/** Ids arrive as hex in OTLP/JSON; tolerate base64 (protobuf-JSON mapping) too. */
function hexId(id: string | undefined): string {
  if (!id) return '';
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

// ---- OTLP protobuf (opentelemetry-proto, collector/trace/v1 and trace/v1) ----------------------

type Field = { no: number; varint?: bigint; bytes?: Buffer; fixed?: Buffer };

/** The fields of one protobuf message, in order (wire types 0, 1, 2 and 5; groups are refused). */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= buf.length) throw new Error('protobuf: truncated varint');
      const b = buf[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      if (shift > 63n) throw new Error('protobuf: varint too long');
    }
  };
  const take = (n: number): Buffer => {
    if (at + n > buf.length) throw new Error('protobuf: truncated field');
    const b = buf.subarray(at, at + n);
    at += n;
    return b;
  };
  while (at < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    switch (key & 7) {
      case 0:
        out.push({ no, varint: varint() });
        break;
      case 1:
        out.push({ no, fixed: take(8) });
        break;
      case 2:
        out.push({ no, bytes: take(Number(varint())) });
        break;
      case 5:
        out.push({ no, fixed: take(4) });
        break;
      default:
        throw new Error(`protobuf: wire type ${key & 7} of field ${no} not expected in OTLP`);
    }
  }
  return out;
}

const sub = (fs: Field[], no: number): Buffer[] => fs.filter((f) => f.no === no && f.bytes !== undefined).map((f) => f.bytes!);
const one = (fs: Field[], no: number): Field | undefined => fs.find((f) => f.no === no);

/** AnyValue: 1 string_value, 2 bool_value, 3 int_value, 4 double_value. */
function pbValue(buf: Buffer): string | number | boolean {
  const fs = fields(buf);
  const f = fs[0];
  if (f === undefined) return '';
  if (f.no === 1) return f.bytes!.toString('utf8');
  if (f.no === 2) return f.varint !== 0n;
  if (f.no === 3) return Number(BigInt.asIntN(64, f.varint!));
  if (f.no === 4) return f.fixed!.readDoubleLE(0);
  return '';
}

/** KeyValue: 1 key, 2 value. */
function pbAttributes(kvs: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of kvs) {
    const fs = fields(kv);
    const key = sub(fs, 1)[0]?.toString('utf8') ?? '';
    const value = sub(fs, 2)[0];
    out[key] = value === undefined ? '' : pbValue(value);
  }
  return out;
}

/**
 * ExportTraceServiceRequest: 1 resource_spans. ResourceSpans: 1 resource (Resource: 1 attributes),
 * 2 scope_spans. ScopeSpans: 2 spans. Span: 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind,
 * 7 start_time_unix_nano, 8 end_time_unix_nano, 9 attributes, 15 status (Status: 3 code).
 */
function decodeProtobufSpans(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of sub(fields(body), 1)) {
    const rsf = fields(rs);
    const resource = sub(rsf, 1)[0];
    const service = String((resource ? pbAttributes(sub(fields(resource), 1)) : {})['service.name'] ?? '');
    for (const ss of sub(rsf, 2)) {
      for (const sp of sub(fields(ss), 2)) {
        const f = fields(sp);
        const status = sub(f, 15)[0];
        spans.push({
          traceId: sub(f, 1)[0]?.toString('hex') ?? '',
          spanId: sub(f, 2)[0]?.toString('hex') ?? '',
          parentSpanId: sub(f, 4)[0]?.toString('hex') ?? '',
          name: sub(f, 5)[0]?.toString('utf8') ?? '',
          kind: Number(one(f, 6)?.varint ?? 0n),
          service,
          attributes: pbAttributes(sub(f, 9)),
          statusCode: status ? Number(one(fields(status), 3)?.varint ?? 0n) : 0,
          startNs: one(f, 7)?.fixed?.readBigUInt64LE(0) ?? 0n,
          endNs: one(f, 8)?.fixed?.readBigUInt64LE(0) ?? 0n,
          encoding: 'protobuf',
        });
      }
    }
  }
  return spans;
}

/** OTLP/JSON: the same ExportTraceServiceRequest in the protobuf-JSON mapping. */
function decodeJsonSpans(body: Buffer): ReceivedSpan[] {
  const doc = JSON.parse(body.toString('utf8')) as {
    resourceSpans?: Array<{ resource?: { attributes?: Array<{ key: string; value: AnyValue }> }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>;
  };
  const spans: ReceivedSpan[] = [];
  for (const rs of doc.resourceSpans ?? []) {
    const service = String(plain(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value ?? {}));
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const attributes: ReceivedSpan['attributes'] = {};
        for (const a of (s.attributes as Array<{ key: string; value: AnyValue }> | undefined) ?? []) attributes[a.key] = plain(a.value);
        spans.push({
          traceId: hexId(s.traceId as string),
          spanId: hexId(s.spanId as string),
          parentSpanId: hexId(s.parentSpanId as string | undefined),
          name: String(s.name),
          kind: Number(s.kind),
          service,
          attributes,
          statusCode: Number((s.status as { code?: number } | undefined)?.code ?? 0),
          startNs: BigInt(String(s.startTimeUnixNano)),
          endNs: BigInt(String(s.endTimeUnixNano)),
          encoding: 'json',
        });
      }
    }
  }
  return spans;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const headers: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      try {
        let body = Buffer.concat(parts);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const type = req.headers['content-type'] ?? '';
        const protobuf = type.startsWith('application/x-protobuf');
        if (!protobuf && !type.startsWith('application/json')) throw new Error(`expected application/x-protobuf or application/json, got ${type || 'no content type'}`);
        spans.push(...(protobuf ? decodeProtobufSpans(body) : decodeJsonSpans(body)));
        headers.push(req.headers);
        // An empty ExportTraceServiceResponse in the request's encoding.
        if (protobuf) res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end((e as Error).message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    spans,
    headers,
    waitForSpans: (pred, timeoutMs = 20_000) => waitFor(() => (pred(spans) ? spans : undefined), { timeoutMs, what: 'exported spans' }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

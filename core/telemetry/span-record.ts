// What the request path records of a sampled span: plain data, no OpenTelemetry object. The SDK's
// spans cost the main thread ~150k instructions a sampled request at 1 % sampling (its code runs too
// rarely to be optimised; bench/RESULTS.md, "Telemetry overhead", sessions 6 and 7), and its
// serializer more. A record is a dozen fields, cloned to the export worker in batches, where
// span-export.ts turns it into the SDK's ReadableSpan for OpenTelemetry's own batch processor,
// serializer and OTLP/HTTP client.
import { randomFillSync } from 'node:crypto';

export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** The parent's span id; undefined for a root span. */
  parentSpanId: string | undefined;
  /** The parent came from another process (the caller's traceparent or B3). */
  parentRemote: boolean;
  traceState: string | undefined;
  name: string;
  /** @opentelemetry/api's SpanKind (SERVER, CLIENT). */
  kind: number;
  /** performance.now() of the recording thread; the worker adds that thread's time origin. */
  start: number;
  end: number;
  attributes: Record<string, string | number>;
  /** @opentelemetry/api's SpanStatusCode (UNSET, or ERROR: a proxy never sets OK). */
  status: number;
  statusMessage: string | undefined;
}

/** Where finished records go: the export worker in a sidecar, an in-process SDK processor in tests. */
export interface SpanSink {
  push(record: SpanRecord): void;
  /** Resolves when every record pushed so far has been handed to the exporter and exported (or failed). */
  forceFlush(): Promise<void>;
  /** Exports what is queued, then stops. */
  shutdown(): Promise<void>;
}

// Span ids of sampled spans: 16 hex characters sliced from a pool made from 4 KiB of CSPRNG bytes at a
// time (512 ids), as tracing.ts's root pool does for traceparents. W3C forbids the all-zero id: a pool
// holding one (odds 2^-55 a refill) is drawn again.
const IDS_PER_POOL = 512;
const idBytes = Buffer.alloc(8 * IDS_PER_POOL);
const idWords = new Uint32Array(idBytes.buffer, idBytes.byteOffset, idBytes.length / 4);
let idPool = '';
let idOffset = 0;

/** Whether a pool of 8-byte ids, seen as 32-bit words, holds an all-zero id (forbidden by W3C). */
export function hasZeroId(words: Uint32Array): boolean {
  for (let i = 0; i < words.length; i += 2) if ((words[i]! | words[i + 1]!) === 0) return true;
  return false;
}

/** A random, non-zero W3C span id (16 lowercase hex characters). */
export function newSpanId(): string {
  if (idOffset === idPool.length) {
    do randomFillSync(idBytes);
    while (hasZeroId(idWords));
    idPool = idBytes.toString('hex');
    idOffset = 0;
  }
  return idPool.slice(idOffset, (idOffset += 16));
}

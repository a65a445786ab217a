// A SpanExporter that serializes spans to OTLP on the main thread and sends them from a worker thread.
//
// Why: the stock exporter's HTTP client runs node's streams, sockets and event emitters on objects
// of other shapes than the data path's, in the same isolate. Every export then deoptimises the
// data path's hottest core functions (Readable.read, onStreamRead, writeOrBuffer, Socket._read,
// emit… "wrong map"), which V8 recompiles as slower polymorphic code: a sidecar at 1 % sampling saw
// 80 deoptimisations and a compile every ~100 ms where one that serialized and dropped its spans saw
// 8 (bench/RESULTS.md, Telemetry overhead, session 5). A worker has its own isolate: its HTTP client
// shares no feedback with the data path. Serializing stays here (a span is not transferable; its
// OTLP bytes are) and costs the same as before.
import { Worker } from 'node:worker_threads';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { OtlpProtocol } from './tracing.js';

export interface WorkerExportOptions {
  protocol: OtlpProtocol;
}

export interface ExportRequest {
  id: number;
  bytes: Uint8Array;
  /** Spans in the request (the delegate's self-observability counts them). */
  spans: number;
}

export interface ExportReply {
  id: number;
  code: ExportResultCode;
  error: string | undefined;
}

// The worker is the compiled JavaScript next to this module (tests run it from dist/, as the sidecar does).
const WORKER_URL = new URL('./otlp-export-worker.js', import.meta.url);

export class WorkerSpanExporter implements SpanExporter {
  #worker: Worker;
  #serializer: typeof ProtobufTraceSerializer | typeof JsonTraceSerializer;
  #pending = new Map<number, (r: ExportResult) => void>();
  #next = 0;
  #exited: Promise<void>;
  #dead: Error | undefined;
  #stopping = false;
  /** forceFlush() callers, resolved when no export is left in flight. */
  #drained: Array<() => void> = [];

  constructor(opts: WorkerExportOptions) {
    this.#serializer = opts.protocol === 'http/json' ? JsonTraceSerializer : ProtobufTraceSerializer;
    // No node options: V8's flags are the process's anyway, and the parent's (--input-type, -e, a
    // loader) mean nothing to a worker file.
    this.#worker = new Worker(WORKER_URL, { workerData: opts, execArgv: [] });
    // An idle worker does not hold the process open; one with exports in flight, or shutting down, does
    // (else a process whose last handle closed would exit before its spans were sent).
    this.#worker.unref();
    this.#worker.on('message', (m: ExportReply) => {
      const done = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      done?.({ code: m.code, error: m.error !== undefined ? new Error(m.error) : undefined });
      if (this.#pending.size === 0) {
        if (!this.#stopping) this.#worker.unref();
        for (const resolve of this.#drained.splice(0)) resolve();
      }
    });
    this.#worker.on('error', (e) => this.#fail(e));
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', (code) => {
        this.#fail(new Error(`the OTLP export worker exited (code ${code})`));
        resolve();
      }),
    );
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.#dead !== undefined) return done({ code: ExportResultCode.FAILED, error: this.#dead });
    const bytes = this.#serializer.serializeRequest(spans);
    if (bytes === undefined) return done({ code: ExportResultCode.FAILED, error: new Error('OTLP serialization failed') });
    const id = this.#next++;
    this.#pending.set(id, done);
    this.#worker.ref();
    const req: ExportRequest = { id, bytes, spans: spans.length };
    this.#worker.postMessage(req);
  }

  /** Waits for the exports already handed to the worker. */
  forceFlush(): Promise<void> {
    if (this.#pending.size === 0 || this.#dead !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  async shutdown(): Promise<void> {
    if (this.#dead !== undefined) return;
    this.#stopping = true;
    this.#worker.ref();
    this.#worker.postMessage({ shutdown: true });
    await this.#exited;
  }

  #fail(e: Error): void {
    this.#dead ??= e;
    for (const done of this.#pending.values()) done({ code: ExportResultCode.FAILED, error: e });
    this.#pending.clear();
    for (const resolve of this.#drained.splice(0)) resolve();
  }
}

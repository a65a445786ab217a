// The span sink of a sidecar: finished span records (span-record.ts) go to a worker thread in
// batches, and the worker runs OpenTelemetry's own pipeline on them: ReadableSpans, the SDK's
// BatchSpanProcessor (OTEL_BSP_*), the OTLP serializer and the OTLP/HTTP export delegate
// (OTEL_EXPORTER_OTLP_*) — otlp-export-worker.ts.
//
// Why a worker, twice over. (1) The stock exporter's HTTP client runs node's streams, sockets and
// event emitters on objects of other shapes than the data path's, in the same isolate: every export
// deoptimised the data path's hottest core functions (Readable.read, onStreamRead, writeOrBuffer…
// "wrong map"); a worker has its own isolate (bench/RESULTS.md, Telemetry overhead, session 5).
// (2) The SDK's spans and serializer are slow on a thread where they run for one request in a
// hundred: a record is a dozen fields, and the SDK is not even loaded on the request path's thread
// (session 7).
import { Worker } from 'node:worker_threads';
import { stderrLine } from '../log.js';
import type { OtlpProtocol } from './tracing.js';
import type { SpanRecord, SpanSink } from './span-record.js';

export interface WorkerSinkOptions {
  protocol: OtlpProtocol;
  /** service.name (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still win, in the worker). */
  serviceName: string;
  /** The longest a record waits to be handed over (benches compare intervals); default 1 s. */
  handOffMs?: number;
}

// Records are handed over once this many wait, or once the oldest has waited this long; the SDK's own
// batching (OTEL_BSP_*, 5 s by default) follows in the worker, so a span reaches the collector at most
// a second later than with the stock exporter. Each message costs the worker more than its records
// do (the message event's dispatch and its handler run too rarely to be optimised): at 60 spans a
// second (1 % of 3,000 requests), handing over every 100 ms cost the worker 60–62 µs of CPU a span,
// every second 35–41 µs, every 5 s 30–32 µs (bench/export-worker-cpu.mjs; bench/RESULTS.md,
// "Telemetry overhead", session 8). A second is most of the gain for a second more of delay.
const HAND_OFF_RECORDS = 256;
const HAND_OFF_MS = 1_000;

/** What the worker is started with. */
export interface WorkerSinkData {
  protocol: OtlpProtocol;
  serviceName: string;
  /** The main thread's performance.timeOrigin: records carry its performance.now() times. */
  timeOrigin: number;
}

export type ToWorker = { records: SpanRecord[] } | { flush: number } | { shutdown: true };
export type FromWorker = { flushed: number };

// The worker is the compiled JavaScript next to this module (tests run it from dist/, as the sidecar does).
const WORKER_URL = new URL('./otlp-export-worker.js', import.meta.url);

export class WorkerSpanSink implements SpanSink {
  readonly #worker: Worker;
  #records: SpanRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushes = new Map<number, () => void>();
  #nextFlush = 0;
  #exited: Promise<void>;
  #dead = false;
  #stopping: Promise<void> | undefined;
  readonly #handOffMs: number;

  constructor(opts: WorkerSinkOptions) {
    this.#handOffMs = opts.handOffMs ?? HAND_OFF_MS;
    const workerData: WorkerSinkData = { protocol: opts.protocol, serviceName: opts.serviceName, timeOrigin: performance.timeOrigin };
    // No node options: V8's flags are the process's anyway, and the parent's (--input-type, -e, a
    // loader) mean nothing to a worker file.
    this.#worker = new Worker(WORKER_URL, { workerData, execArgv: [] });
    // An idle worker does not hold the process open (its batch processor's timer is unref()ed too);
    // one asked to flush or shut down does, until it answers.
    this.#worker.unref();
    this.#worker.on('message', (m: FromWorker) => {
      const done = this.#flushes.get(m.flushed);
      this.#flushes.delete(m.flushed);
      if (this.#flushes.size === 0 && this.#stopping === undefined) this.#worker.unref();
      done?.();
    });
    this.#worker.on('error', (e) => this.#fail(e.message));
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', (code) => {
        this.#fail(`exit code ${code}`);
        resolve();
      }),
    );
  }

  push(record: SpanRecord): void {
    if (this.#dead || this.#stopping !== undefined) return;
    const n = this.#records.push(record);
    if (n >= HAND_OFF_RECORDS) this.#handOff();
    else if (n === 1) {
      this.#timer = setTimeout(() => this.#handOff(), this.#handOffMs);
      this.#timer.unref();
    }
  }

  forceFlush(): Promise<void> {
    if (this.#dead) return Promise.resolve();
    this.#handOff();
    const id = this.#nextFlush++;
    this.#worker.ref();
    this.#post({ flush: id });
    return new Promise((resolve) => this.#flushes.set(id, resolve));
  }

  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      if (this.#dead) return;
      this.#handOff();
      this.#worker.ref();
      this.#post({ shutdown: true });
      await this.#exited;
    })();
    return this.#stopping;
  }

  #handOff(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#records.length === 0) return;
    const records = this.#records;
    this.#records = [];
    this.#post({ records });
  }

  #post(m: ToWorker): void {
    if (!this.#dead) this.#worker.postMessage(m);
  }

  /** The worker is gone: what it held is lost, and nobody waits for it any more. */
  #fail(why: string): void {
    if (!this.#dead && this.#stopping === undefined) {
      stderrLine(50, 'the OTLP export worker stopped; spans are dropped from now on', { error: why });
    }
    this.#dead = true;
    this.#records = [];
    for (const done of this.#flushes.values()) done();
    this.#flushes.clear();
  }
}

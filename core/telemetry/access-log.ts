// One JSON line per request (Envoy's access log, Linkerd's access_log). The request path only keeps
// the request's entry and its time; entries are formatted 64 at a time (access-line.ts) and copied into
// a batch as one string, and the write system calls happen later, one per 64 KiB or per 200 ms
// (batched-line-writer.ts). Successful requests are sampled, errors always logged.
//
// Why groups: a line formatted and copied on the request path, between two requests' worth of other
// code, ran with cold caches and cost a real sidecar ~2.5 times what the same work costs in a loop.
// Side by side in one run, the access log on top of metrics cost −10.9 % of throughput formatted a line
// a request, −7.5 % formatted a line a request and copied 64 at a time, −4.3 % formatted and copied 64
// at a time (bench/RESULTS.md, "Telemetry overhead", session 12). Before that, pino and sonic-boom cost
// ~10 µs a line: sonic-boom re-measured its growing string for every line.
//
// The path is logged without its query string: queries carry tokens and personal data often enough
// that a log shipped to a third party must not hold them by default.
import { openSync } from 'node:fs';
import { meshError } from '../errors.js';
import { stderrLine } from '../log.js';
import { formatAccessLine } from './access-line.js';
import { BatchedLineWriter, type LineStream } from './batched-line-writer.js';
import type { Direction } from './observer.js';

export interface AccessLogSettings {
  readonly enabled: boolean;
  /** Share of non-error requests logged (0..1). */
  readonly sampleRatio: number;
  /** Requests answered with a lower status are not logged. */
  readonly minStatus: number;
}

export const DEFAULT_ACCESS_LOG_SETTINGS: AccessLogSettings = Object.freeze({ enabled: true, sampleRatio: 1, minStatus: 0 });

export interface AccessLogEntry {
  direction: Direction;
  method: string;
  authority: string;
  /** The request target; the query is cut off before logging. */
  path: string;
  status: number;
  errorCode?: string | undefined;
  service?: string | undefined;
  route?: string | undefined;
  endpoint?: string | undefined;
  attempts: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  /**
   * 32 hex digits and nothing else: it is written as given, not escaped. The sidecar's comes from
   * RequestTelemetry.traceId, which tracing.ts makes or parses only as such, or which is checked against
   * the caller's traceparent when tracing is off (sidecar-observer.ts).
   */
  traceId?: string | undefined;
}

export interface AccessLogOptions {
  /** A file path (appended to), a file descriptor (1 = stdout, the default), or a stream (tests; handed batches of lines). */
  destination?: string | number | LineStream;
  settings?: AccessLogSettings;
  /** Sampling randomness (tests). */
  random?: () => number;
  /** Epoch milliseconds for the line's `time` (tests). */
  now?: () => number;
  /** Batching and its bounds (tests); the defaults are 64 KiB batches, 200 ms, 4 MiB queued. */
  batch?: { batchBytes?: number; flushMs?: number; maxQueuedBytes?: number; closeTimeoutMs?: number };
  /** A write failed and its lines were lost; default: one warning on stderr per error code. */
  onError?: (e: NodeJS.ErrnoException) => void;
}

/** Entries held before they are formatted; the timer (batch.flushMs, 200 ms) still bounds a line's wait. */
const GROUP = 64;

function isError(status: number, errorCode: string | undefined): boolean {
  return errorCode !== undefined || status >= 500 || status === 0;
}

export class AccessLog {
  #settings: AccessLogSettings;
  #random: () => number;
  #now: () => number;
  #writer: BatchedLineWriter;
  #closed = false;
  readonly #group: Array<AccessLogEntry | undefined> = new Array<AccessLogEntry | undefined>(GROUP).fill(undefined);
  readonly #times = new Float64Array(GROUP);
  #held = 0;

  constructor(opts: AccessLogOptions = {}) {
    this.#settings = opts.settings ?? DEFAULT_ACCESS_LOG_SETTINGS;
    this.#random = opts.random ?? Math.random;
    this.#now = opts.now ?? Date.now;
    const d = opts.destination ?? 1;
    this.#writer = new BatchedLineWriter({
      ...opts.batch,
      destination: typeof d === 'string' ? openForAppend(d) : d,
      closeFd: typeof d === 'string',
      onError: opts.onError ?? warnOncePerCode(),
      pull: () => this.#release(),
    });
  }

  get settings(): AccessLogSettings {
    return this.#settings;
  }

  /** New settings from the mesh config (telemetry.accessLog); applies to the next request. */
  configure(settings: AccessLogSettings): void {
    if (!(settings.sampleRatio >= 0 && settings.sampleRatio <= 1)) throw meshError('CONFIG_INVALID', `access log sample ratio ${settings.sampleRatio}: expected a number from 0 to 1`, { sampleRatio: settings.sampleRatio });
    this.#settings = Object.freeze({ ...settings });
  }

  /** Whether a request with this outcome gets a line (checked before the entry is even built). */
  wants(status: number, errorCode: string | undefined): boolean {
    const s = this.#settings;
    if (!s.enabled || status < s.minStatus) return false;
    if (isError(status, errorCode) || s.sampleRatio >= 1) return true;
    return this.#random() < s.sampleRatio;
  }

  /** Lines lost because the destination could not keep up (over 4 MiB queued) or failed. */
  get dropped(): number {
    return this.#writer.dropped;
  }

  /**
   * Queues the request's line unconditionally (call wants() first). The entry is kept, not copied, until
   * its group is formatted: it must not change after this call.
   */
  write(e: AccessLogEntry): void {
    if (this.#closed) return;
    const n = this.#held;
    this.#group[n] = e;
    this.#times[n] = this.#now();
    this.#held = n + 1;
    if (n + 1 === GROUP) this.#release();
    else if (n === 0) this.#writer.scheduleFlush();
  }

  /** Formats the held entries, in order, and hands their lines to the writer. */
  #release(): void {
    const n = this.#held;
    if (n === 0) return;
    const group = this.#group;
    const lines = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const e = group[i]!;
      group[i] = undefined;
      const q = e.path.indexOf('?');
      if (q !== -1) e.path = e.path.slice(0, q);
      lines[i] = formatAccessLine(e, this.#times[i]!);
    }
    this.#held = 0;
    this.#writer.writeLines(lines);
  }

  /** Writes out every queued line (held ones included), then releases the destination (stdout stays open). Later lines are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writer.close();
  }
}

/** Opened now, synchronously, so a bad path fails the start with a clear message. */
function openForAppend(file: string): number {
  try {
    return openSync(file, 'a');
  } catch (e) {
    throw meshError('CONFIG_INVALID', `access log file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { flag: '--access-log', path: file }, e);
  }
}

/** The access log has no logger of its own; a lost batch must still be visible, without a flood. */
function warnOncePerCode(): (e: NodeJS.ErrnoException) => void {
  const seen = new Set<string>();
  return (e) => {
    const code = e.code ?? e.message;
    if (seen.has(code)) return;
    seen.add(code);
    stderrLine(40, 'access log write failed; its lines are dropped', { code });
  };
}

// One JSON line per request (Envoy's access log, Linkerd's access_log), written with pino to an
// asynchronous sonic-boom destination: the request path formats a line and queues it; the write
// system call happens later, in batches. Successful requests are sampled, errors always logged.
//
// The path is logged without its query string: queries carry tokens and personal data often enough
// that a log shipped to a third party must not hold them by default.
import { openSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';
import { meshError } from '../errors.js';
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
  traceId?: string | undefined;
}

export interface AccessLogOptions {
  /** A file path (appended to), a file descriptor (1 = stdout, the default), or a stream (tests). */
  destination?: string | number | DestinationStream;
  settings?: AccessLogSettings;
  /** Sampling randomness (tests). */
  random?: () => number;
}

function isError(status: number, errorCode: string | undefined): boolean {
  return errorCode !== undefined || status >= 500 || status === 0;
}

export class AccessLog {
  #settings: AccessLogSettings;
  #random: () => number;
  #dest: DestinationStream & { end?: () => void; once?: (event: string, fn: (e?: unknown) => void) => unknown };
  #closed = false;
  #logger: Logger;
  #ownsDest: boolean;

  constructor(opts: AccessLogOptions = {}) {
    this.#settings = opts.settings ?? DEFAULT_ACCESS_LOG_SETTINGS;
    this.#random = opts.random ?? Math.random;
    const d = opts.destination ?? 1;
    if (typeof d === 'object') {
      this.#dest = d;
      this.#ownsDest = false;
    } else {
      let fd = d;
      if (typeof d === 'string') {
        // Opened now, synchronously, so a bad path fails the start with a clear message.
        try {
          fd = openSync(d, 'a');
        } catch (e) {
          throw meshError('CONFIG_INVALID', `access log file ${d}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { flag: '--access-log', path: d }, e);
        }
      }
      // minLength 0: no line waits for a buffer to fill; writes are still batched while one is in flight.
      this.#dest = pino.destination({ dest: fd as number, sync: false, minLength: 0 });
      this.#ownsDest = true;
    }
    this.#logger = pino(
      {
        base: null,
        // Same shape as the process log (level, time, msg) so one log pipeline reads both; msg is "access".
        timestamp: pino.stdTimeFunctions.isoTime,
      },
      this.#dest,
    );
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

  /** Writes the line unconditionally; call wants() first. */
  write(e: AccessLogEntry): void {
    if (this.#closed) return;
    const q = e.path.indexOf('?');
    if (q !== -1) e.path = e.path.slice(0, q);
    e.durationMs = Math.round(e.durationMs * 1000) / 1000;
    this.#logger.info(e, 'access');
  }

  /** Writes out every queued line, then releases the destination (stdout stays open). Later lines are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const dest = this.#dest;
    if (!this.#ownsDest || typeof dest.end !== 'function') return;
    await new Promise<void>((resolve, reject) => {
      dest.once?.('close', () => resolve());
      dest.once?.('error', reject);
      dest.end!();
    });
  }
}

// One access log line, formatted by hand: the same JSON pino wrote (level, time, the entry's fields in
// order, msg last; undefined fields left out) at a third of the cost. In-process on the CPU clock
// (bench/RESULTS.md, "Telemetry overhead"): pino.info(entry) to a no-op stream ~1.7 µs a line, this ~0.5 µs.
import type { AccessLogEntry } from './access-log.js';

// A string without these is its own JSON body between quotes; the rest go through JSON.stringify.
// Surrogates are included so a lone one is escaped exactly as JSON.stringify does (valid UTF-8 out).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

const str = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);
// JSON has no NaN or Infinity; JSON.stringify (and so pino) writes null for them.
const num = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');

// toISOString costs ~0.4 µs; the part up to the second changes once a second.
let cachedSecond = NaN;
let cachedPrefix = '';

/** `2026-11-24T03:02:26.490Z` for a time in epoch milliseconds. */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "…T03:02:26."
  }
  const milli = Math.floor(ms - second * 1000);
  return `${cachedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** The line for one request, newline included; `path` is expected without its query already. */
export function formatAccessLine(e: Readonly<AccessLogEntry>, timeMs: number): string {
  let line = `{"level":30,"time":"${isoTime(timeMs)}","direction":${str(e.direction)},"method":${str(e.method)},"authority":${str(e.authority)},"path":${str(e.path)},"status":${num(e.status)}`;
  if (e.errorCode !== undefined) line += `,"errorCode":${str(e.errorCode)}`;
  if (e.service !== undefined) line += `,"service":${str(e.service)}`;
  if (e.route !== undefined) line += `,"route":${str(e.route)}`;
  if (e.endpoint !== undefined) line += `,"endpoint":${str(e.endpoint)}`;
  line += `,"attempts":${num(e.attempts)},"durationMs":${num(e.durationMs)},"bytesIn":${num(e.bytesIn)},"bytesOut":${num(e.bytesOut)}`;
  if (e.traceId !== undefined) line += `,"traceId":${str(e.traceId)}`;
  return `${line},"msg":"access"}\n`;
}

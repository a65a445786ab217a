// One access log line, formatted by hand: the same JSON pino wrote (level, time, the entry's fields in
// order, msg last; undefined fields left out) at a third of the cost. In-process on the CPU clock
// (bench/RESULTS.md, "Telemetry overhead"): pino.info(entry) to a no-op stream ~1.7 µs a line, this ~0.3 µs.
import type { AccessLogEntry } from './access-log.js';

// A string without these is its own JSON body between quotes; the rest go through JSON.stringify.
// Surrogates are included so a lone one is escaped exactly as JSON.stringify does (valid UTF-8 out).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

const str = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);
// JSON has no NaN or Infinity; JSON.stringify (and so pino) writes null for them.
const num = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');

// Direction, method, authority, service, route, endpoint and error code repeat from request to
// request: their JSON form is looked up, not re-checked. Bounded in entries and in size (a flood of
// distinct authorities empties the table; a value longer than QUOTED_LONGEST is never kept), so the
// table holds at most ~2 MB whatever clients send.
const QUOTED_MAX = 4096;
const QUOTED_LONGEST = 256;
const quotedCache = new Map<string, string>();
function quoted(s: string): string {
  if (s.length > QUOTED_LONGEST) return str(s);
  let q = quotedCache.get(s);
  if (q === undefined) {
    if (quotedCache.size >= QUOTED_MAX) quotedCache.clear();
    quotedCache.set(s, (q = str(s)));
  }
  return q;
}

/**
 * Milliseconds to three decimals, exactly as String(Math.round(ms * 1000) / 1000) writes them ("0.815",
 * "12", "1.5", "0.05"), from integer arithmetic: formatting a fractional double costs ~80 ns, this ~10.
 */
export function millis(ms: number): string {
  const us = Math.round(ms * 1000);
  // NaN, negative or absurd: the general way (below 1e15 µs the shortest double is the exact decimal).
  if (!(us >= 0 && us < 1e15)) return num(us / 1000);
  const whole = Math.floor(us / 1000);
  const thousandths = us - whole * 1000;
  if (thousandths === 0) return String(whole);
  let f = thousandths;
  while (f % 10 === 0) f /= 10; // 1.500 → 1.5, as a shortest double prints it
  return `${whole}.${thousandths < 10 ? '00' : thousandths < 100 ? '0' : ''}${f}`;
}

// toISOString costs ~0.4 µs; the part up to the second changes once a second. Kept bare (isoTime)
// and with the line's opening (formatAccessLine), both made on the second's first call.
let cachedSecond = NaN;
let cachedPrefix = ''; // "2026-11-24T03:02:26."
let linePrefix = ''; // '{"level":30,"time":"2026-11-24T03:02:26.'

function enterSecond(second: number): void {
  cachedSecond = second;
  cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  linePrefix = ['{"level":30,"time":"', cachedPrefix].join('');
}

/** `2026-11-24T03:02:26.490Z` for a time in epoch milliseconds. */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) enterSecond(second);
  const milli = Math.floor(ms - second * 1000);
  return `${cachedPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

// A line is built from as few pieces as steady traffic allows. Every piece is one more node of the
// string V8 builds by concatenation, and one more the copy into the batch walks to flatten it (in a
// sidecar the flatten-and-copy is about half of the access log's cost, the formatting the other half;
// bench/RESULTS.md, "Telemetry overhead", session 7). So runs of fields that repeat from request to
// request are kept as one piece each, keys and punctuation included (a quarter fewer instructions to
// format a line, 2.6k → 2.0k), and each run is made with join(), which writes a flat string: made by
// concatenation, a run was a tree that every line's copy walked again (the observer loop with an
// access log, copy included: 6.9k → 5.2k instructions a request, session 8):
//   {"level":30,"time":"…T03:02:26.   once a second
//   490Z"                              one of 1,000 ready-made millisecond endings
//   ,"direction":…,"path":"           while direction, method and authority repeat
//   <path>
//   ","status":200,…,"attempts":1,"durationMs":   while status, attempts, error code, service, route, endpoint repeat
//   <duration>
//   ,"bytesIn":0,"bytesOut":1234,"msg":"access"}\n   while the byte counts (and whether a trace id follows) repeat
// and, with a trace id, `<trace id>","msg":"access"}\n` — 7 pieces a line, or 9, instead of ~22.
const MILLIS_END: readonly string[] = Array.from({ length: 1000 }, (_, m) => `${String(m).padStart(3, '0')}Z"`);
const TAIL = '","msg":"access"}\n';

let lastDirection: string | undefined;
let lastMethod: string | undefined;
let lastAuthority: string | undefined;
let head = '';
let lastErrorCode: string | undefined;
let lastService: string | undefined;
let lastRoute: string | undefined;
let lastEndpoint: string | undefined;
// What the middle is while the last run is "none of the four" (the start state, so a first line without
// them is right too).
let middle = ',"attempts":';
let statusMiddle: string | undefined;
let lastStatus = NaN;
let lastAttempts = NaN;
let statusRun = '';
let lastBytesIn = NaN;
let lastBytesOut = NaN;
let lastTraced = false;
let bytesRun = '';

/** A JSON string's body, without its quotes. */
const inner = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s).slice(1, -1) : s);

/** The line for one request, newline included; `path` is expected without its query already. */
export function formatAccessLine(e: Readonly<AccessLogEntry>, timeMs: number): string {
  const second = Math.floor(timeMs / 1000);
  if (second !== cachedSecond) enterSecond(second);
  const milli = Math.floor(timeMs - second * 1000);
  if (e.direction !== lastDirection || e.method !== lastMethod || e.authority !== lastAuthority) {
    lastDirection = e.direction;
    lastMethod = e.method;
    lastAuthority = e.authority;
    head = [',"direction":', quoted(e.direction), ',"method":', quoted(e.method), ',"authority":', quoted(e.authority), ',"path":"'].join('');
  }
  if (e.errorCode !== lastErrorCode || e.service !== lastService || e.route !== lastRoute || e.endpoint !== lastEndpoint) {
    lastErrorCode = e.errorCode;
    lastService = e.service;
    lastRoute = e.route;
    lastEndpoint = e.endpoint;
    middle = '';
    if (e.errorCode !== undefined) middle += `,"errorCode":${quoted(e.errorCode)}`;
    if (e.service !== undefined) middle += `,"service":${quoted(e.service)}`;
    if (e.route !== undefined) middle += `,"route":${quoted(e.route)}`;
    if (e.endpoint !== undefined) middle += `,"endpoint":${quoted(e.endpoint)}`;
    middle += ',"attempts":';
  }
  if (e.status !== lastStatus || e.attempts !== lastAttempts || middle !== statusMiddle) {
    lastStatus = e.status;
    lastAttempts = e.attempts;
    statusMiddle = middle;
    statusRun = ['","status":', num(e.status), middle, num(e.attempts), ',"durationMs":'].join('');
  }
  const traced = e.traceId !== undefined;
  if (e.bytesIn !== lastBytesIn || e.bytesOut !== lastBytesOut || traced !== lastTraced) {
    lastBytesIn = e.bytesIn;
    lastBytesOut = e.bytesOut;
    lastTraced = traced;
    bytesRun = [',"bytesIn":', num(e.bytesIn), ',"bytesOut":', num(e.bytesOut), traced ? ',"traceId":"' : ',"msg":"access"}\n'].join('');
  }
  const line = `${linePrefix}${MILLIS_END[milli]}${head}${inner(e.path)}${statusRun}${millis(e.durationMs)}${bytesRun}`;
  // A trace id is 32 hex digits by the entry's contract (checked where it is read), so it is not scanned for
  // characters to escape: that regex over 32 characters was ~0.5k instructions a line.
  return traced ? `${line}${e.traceId!}${TAIL}` : line;
}

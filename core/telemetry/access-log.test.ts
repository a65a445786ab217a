import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { AccessLog, type AccessLogEntry } from './access-log.js';

/** A destination that keeps every line; batches arrive as several lines in one write. */
function collector() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  return {
    lines,
    raw,
    stream: {
      write: (s: string) => {
        raw.push(s);
        for (const l of s.split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      },
    },
  };
}

const tempFile = (): string => path.join(mkdtempSync(path.join(tmpdir(), 'meshlet-al-')), 'access.log');
const readLines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean);

/** Polls until `probe` holds; fails after a deadline (no fixed sleep). */
async function until(probe: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const entry = (p: Partial<AccessLogEntry> = {}): AccessLogEntry => ({
  direction: 'outbound',
  method: 'GET',
  authority: 'users',
  path: '/api/users/7?token=secret',
  status: 200,
  service: 'users',
  route: 'users-default',
  endpoint: '127.0.0.1:9101',
  attempts: 2,
  durationMs: 3.14159,
  bytesIn: 0,
  bytesOut: 42,
  traceId: 'ab'.repeat(16),
  ...p,
});

const T = Date.UTC(2026, 10, 24, 3, 2, 26, 490);

describe('AccessLog', () => {
  it('writes one JSON line with the request facts, the query cut off', async () => {
    const c = collector();
    const log = new AccessLog({ destination: c.stream, now: () => T });
    log.write(entry({ errorCode: 'UPSTREAM_RESET', status: 502 }));
    await log.close();
    expect(c.lines).toHaveLength(1);
    const l = c.lines[0]!;
    expect(l).toMatchObject({ msg: 'access', direction: 'outbound', method: 'GET', authority: 'users', path: '/api/users/7', status: 502, errorCode: 'UPSTREAM_RESET', service: 'users', route: 'users-default', endpoint: '127.0.0.1:9101', attempts: 2, durationMs: 3.142, bytesIn: 0, bytesOut: 42, traceId: 'ab'.repeat(16) });
    expect(l.time).toBe('2026-11-24T03:02:26.490Z');
    expect(l.level).toBe(30);
  });

  it('writes the very line pino wrote before (same keys, order, omissions and escaping)', async () => {
    // Keys in the order sidecar-observer.ts builds the entry (pino keeps the object's order).
    const inOrder = (p: Partial<AccessLogEntry>): AccessLogEntry => {
      const e = entry(p);
      return { direction: e.direction, method: e.method, authority: e.authority, path: e.path, status: e.status, errorCode: e.errorCode, service: e.service, route: e.route, endpoint: e.endpoint, attempts: e.attempts, durationMs: e.durationMs, bytesIn: e.bytesIn, bytesOut: e.bytesOut, traceId: e.traceId };
    };
    const entries = [
      inOrder({}),
      inOrder({ errorCode: 'NO_ROUTE', status: 404, service: undefined, route: undefined, endpoint: undefined, traceId: undefined, attempts: 0 }),
      inOrder({ direction: 'inbound', method: 'POST', authority: 'we"ird\\host', path: '/a b/\t\u0001"q"/é/日本/🙂/' + 'x'.repeat(120), durationMs: NaN, status: 0, errorCode: 'UPSTREAM_RESET' }),
    ];
    const c = collector();
    const log = new AccessLog({ destination: c.stream, now: () => T });
    for (const e of entries) log.write({ ...e });
    await log.close();
    const ours = c.raw.join('');
    let theirs = '';
    const p = pino({ base: null, timestamp: () => `,"time":"${new Date(T).toISOString()}"` }, { write: (s: string) => void (theirs += s) });
    for (const e of entries) {
      const q = e.path.indexOf('?');
      p.info({ ...e, path: q === -1 ? e.path : e.path.slice(0, q), durationMs: Math.round(e.durationMs * 1000) / 1000 }, 'access');
    }
    expect(ours).toBe(theirs);
  });

  it('cuts the query string off every path', async () => {
    const c = collector();
    const log = new AccessLog({ destination: c.stream });
    for (const p of ['/a?b=c', '/?x', '/plain', '?only', '/a?b?c', '/p#frag']) log.write(entry({ path: p }));
    await log.close();
    expect(c.lines.map((l) => l.path)).toEqual(['/a', '/', '/plain', '', '/a', '/p#frag']);
  });

  it('writes valid JSON, one line per request, whatever the characters in the request', async () => {
    const file = tempFile();
    const log = new AccessLog({ destination: file });
    const odd = ['q"uote', 'back\\slash', 'new\nline', 'cr\rtab\t', 'nul\u0000bell\u0007esc\u001b\u001f', 'del\u007f', 'é ü ß', '日本語', '🙂 pair', 'lone \ud800 high', 'lone \udc00 low', '\u2028\u2029', '{"json":true}', '</script>'];
    // Not the trace id: it is 32 hex digits by contract, written as given (the observer's tests check its sources).
    for (const s of odd) log.write(entry({ path: `/${s}`, authority: s, method: s, endpoint: s, errorCode: s, service: s, route: s }));
    await log.close();
    const lines = readLines(file);
    expect(lines).toHaveLength(odd.length);
    lines.forEach((text, i) => {
      const l = JSON.parse(text) as Record<string, unknown>;
      for (const k of ['authority', 'method', 'endpoint', 'errorCode', 'service', 'route']) expect(l[k]).toBe(odd[i]);
      expect(l.traceId).toBe('ab'.repeat(16));
      expect(l.path).toBe(`/${odd[i]}`);
    });
  });

  it('batches: thousands of lines reach the destination in a few writes', async () => {
    const c = collector();
    const log = new AccessLog({ destination: c.stream });
    for (let i = 0; i < 5_000; i++) log.write(entry({ path: `/n/${i}` }));
    // Full 64 KiB batches go out as they fill (a batch is sealed when the next ~270-byte line won't fit).
    const full = c.raw.length;
    expect(full).toBeGreaterThan(0);
    for (const chunk of c.raw) expect(Buffer.byteLength(chunk)).toBeGreaterThan(64 * 1024 - 400);
    await log.close();
    expect(c.raw).toHaveLength(full + 1); // the rest at close()
    const total = c.raw.reduce((n, s) => n + Buffer.byteLength(s), 0);
    expect(c.raw.length).toBe(Math.ceil(total / (64 * 1024))); // ~1.5 MB in 24 writes, not 5,000
    expect(c.lines.map((l) => l.path)).toEqual(Array.from({ length: 5_000 }, (_, i) => `/n/${i}`));
  });

  it('writes a lone line to its file within the flush interval, with no more traffic and no close()', async () => {
    const file = tempFile();
    const log = new AccessLog({ destination: file, batch: { flushMs: 100 } });
    log.write(entry({ path: '/lone' }));
    expect(readFileSync(file, 'utf8')).toBe(''); // queued, not written on the request path
    await until(() => readFileSync(file, 'utf8').includes('"path":"/lone"'), 'the timer to flush the line');
    expect(readLines(file)).toHaveLength(1);
    await log.close();
  });

  it('appends to a file asynchronously and has every line there after close()', async () => {
    const file = tempFile();
    const log = new AccessLog({ destination: file });
    for (let i = 0; i < 500; i++) log.write(entry({ path: `/n/${i}` }));
    await log.close();
    const lines = readLines(file).map((s) => JSON.parse(s) as { path: string });
    expect(lines).toHaveLength(500);
    expect(lines[499]!.path).toBe('/n/499');
    log.write(entry()); // after close(): dropped, no throw
  });

  it('formats lines in groups: a group goes to the destination as one copy, the rest when the timer fires', async () => {
    const clock = { t: T };
    const c = collector();
    const log = new AccessLog({ destination: c.stream, now: () => clock.t, batch: { flushMs: 50 } });
    for (let i = 0; i < 70; i++) {
      clock.t = T + i;
      log.write(entry({ path: `/n/${i}` }));
    }
    expect(c.raw).toEqual([]); // 64 formatted and queued, 6 held; nothing written on the request path
    await until(() => c.lines.length === 70, 'the timer to flush the held lines');
    expect(c.raw).toHaveLength(1);
    // Each line has its own request's time, though it was formatted later.
    expect(c.lines.map((l) => l.time)).toEqual(Array.from({ length: 70 }, (_, i) => new Date(T + i).toISOString()));
    expect(c.lines.map((l) => l.path)).toEqual(Array.from({ length: 70 }, (_, i) => `/n/${i}`));
    await log.close();
  });

  it('gets held lines into its file when the process exits without close()', () => {
    const file = tempFile();
    const module = path.join(path.dirname(fileURLToPath(import.meta.url)), 'access-log.ts');
    const script = `import { AccessLog } from ${JSON.stringify(module)};
      const log = new AccessLog({ destination: ${JSON.stringify(file)} });
      for (let i = 0; i < 100; i++) log.write({ direction: 'inbound', method: 'GET', authority: 'a', path: '/n/' + i, status: 200, attempts: 1, durationMs: 1, bytesIn: 0, bytesOut: 0 });
      process.exit(3);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    const paths = readLines(file).map((s) => (JSON.parse(s) as { path: string }).path);
    expect(paths).toEqual(Array.from({ length: 100 }, (_, i) => `/n/${i}`)); // 64 formatted at once, 36 held at exit
  });

  it('drops lines beyond its queue cap when the destination cannot keep up, and counts them', async () => {
    const written: string[] = [];
    const held: Array<() => void> = [];
    const slow = { write: (s: string, done?: (err?: Error | null) => void) => void (written.push(s), held.push(() => done!(null))) };
    const log = new AccessLog({ destination: slow, batch: { batchBytes: 4096, maxQueuedBytes: 16 * 1024 } });
    for (let i = 0; i < 1_000; i++) log.write(entry({ path: `/n/${i}` }));
    // 960 lines were handed to the writer in groups of 64; the last 40 are held until close().
    expect(log.dropped).toBeGreaterThan(850);
    const closed = log.close();
    while (held.length > 0 || written.length === 0) {
      held.shift()?.();
      await Promise.resolve();
    }
    await closed;
    const dropped = log.dropped;
    expect(dropped).toBeGreaterThan(900); // the held 40 too: the queue was still full at close()
    const paths = written.join('').trimEnd().split('\n').map((s) => (JSON.parse(s) as { path: string }).path);
    expect(paths.length).toBe(1_000 - dropped);
    expect(paths).toEqual(Array.from({ length: paths.length }, (_, i) => `/n/${i}`)); // the first ones, in order
  });

  it('survives a destination that fails (a descriptor it cannot write), reporting it and counting the lines', async () => {
    const file = tempFile();
    const errors: string[] = [];
    const fd = openSync(file, 'w+');
    const readOnly = openSync(file, 'r');
    const log = new AccessLog({ destination: readOnly, onError: (e) => errors.push(e.code!) });
    for (let i = 0; i < 10; i++) log.write(entry());
    await log.close();
    expect(errors).toEqual(['EBADF']);
    expect(log.dropped).toBe(10);
    expect(readFileSync(file, 'utf8')).toBe('');
    void fd;
  });

  it('samples successes at the ratio but always logs errors', () => {
    let r = 0.7;
    const log = new AccessLog({ destination: collector().stream, settings: { enabled: true, sampleRatio: 0.5, minStatus: 0 }, random: () => r });
    expect(log.wants(200, undefined)).toBe(false);
    expect(log.wants(503, undefined)).toBe(true);
    expect(log.wants(404, 'NO_ROUTE')).toBe(true);
    r = 0.2;
    expect(log.wants(200, undefined)).toBe(true);
  });

  it('filters by minStatus and can be switched off by config', () => {
    const log = new AccessLog({ destination: collector().stream, settings: { enabled: true, sampleRatio: 1, minStatus: 400 } });
    expect(log.wants(200, undefined)).toBe(false);
    expect(log.wants(404, undefined)).toBe(true);
    log.configure({ enabled: false, sampleRatio: 1, minStatus: 0 });
    expect(log.wants(503, 'OVERFLOW')).toBe(false);
    expect(() => log.configure({ enabled: true, sampleRatio: -1, minStatus: 0 })).toThrow();
    expect(log.settings.enabled).toBe(false); // the refused settings changed nothing
  });

  it('refuses a file it cannot open, naming the flag', () => {
    let err: unknown;
    try {
      new AccessLog({ destination: '/nonexistent-dir/x/access.log' });
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as { details: { flag: string } }).details.flag).toBe('--access-log');
  });
});

import { describe, expect, it, vi } from 'vitest';
import type { AccessLogEntry } from './access-log.js';
import { formatAccessLine, isoTime, millis } from './access-line.js';

// The general way the line wrote durations before: round to microseconds, let the double print itself.
const reference = (ms: number): string => {
  const n = Math.round(ms * 1000) / 1000;
  return Number.isFinite(n) ? String(n) : 'null';
};

describe('millis', () => {
  it('writes what String(Math.round(ms * 1000) / 1000) writes', () => {
    const edge = [0, -0, 0.0004, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 0.815, 1, 1.5, 1.05, 1.005, 1.0004, 9.999, 9.9995, 10, 100.1, 999.999, 1000, 65_000.25, 3_600_000.001, 1e9 + 0.123, 1e11 + 0.999];
    for (const ms of edge) expect(millis(ms), String(ms)).toBe(reference(ms));
    // Seeded (xorshift) so a failure reproduces: durations from microseconds to hours.
    let x = 0x9e3779b9;
    const rnd = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    for (let i = 0; i < 200_000; i++) {
      const ms = rnd() * 10 ** Math.floor(rnd() * 8 - 2);
      expect(millis(ms)).toBe(reference(ms));
    }
  });

  it('writes null for what JSON cannot hold, and a negative duration as the double prints it', () => {
    expect(millis(NaN)).toBe('null');
    expect(millis(Infinity)).toBe('null');
    expect(millis(-1.25)).toBe('-1.25');
    expect(millis(1e20)).toBe(reference(1e20));
  });
});

describe('formatAccessLine', () => {
  const e: AccessLogEntry = { direction: 'outbound', method: 'GET', authority: 'users', path: '/u/1', status: 200, service: 'users', route: 'default', endpoint: '127.0.0.1:9', attempts: 1, durationMs: 0.8154, bytesIn: 0, bytesOut: 12, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' };

  it('escapes repeated fields the same way the first time and after (the quoted-form cache)', () => {
    const odd = { ...e, authority: 'we"ird', method: 'G\u0001T', route: 'r\\1' };
    const first = formatAccessLine(odd, 0);
    expect(formatAccessLine(odd, 0)).toBe(first);
    const parsed = JSON.parse(first) as Record<string, unknown>;
    expect(parsed).toMatchObject({ authority: 'we"ird', method: 'G\u0001T', route: 'r\\1', durationMs: 0.815, time: isoTime(0) });
  });

  it('writes long values (never cached) the same as short ones', () => {
    const long = `h"${'x'.repeat(5_000)}`;
    expect((JSON.parse(formatAccessLine({ ...e, authority: long }, 0)) as { authority: string }).authority).toBe(long);
    expect(formatAccessLine({ ...e, authority: long }, 0)).toBe(formatAccessLine({ ...e, authority: long }, 0));
  });

  it('stays right when more distinct values pass than the cache holds', () => {
    for (let i = 0; i < 10_000; i++) {
      const line = formatAccessLine({ ...e, authority: `host-${i}"x` }, 0);
      expect((JSON.parse(line) as { authority: string }).authority).toBe(`host-${i}"x`);
    }
  });

  it('writes a right first line in a fresh process, whatever fields it lacks (the memo\'s start state)', async () => {
    vi.resetModules();
    const fresh = await import('./access-line.js');
    const line = fresh.formatAccessLine({ direction: 'outbound', method: 'GET', authority: 'a', path: '/', status: 400, attempts: 0, durationMs: 1, bytesIn: 0, bytesOut: 0 }, 0);
    expect(JSON.parse(line)).toMatchObject({ status: 400, attempts: 0, durationMs: 1, msg: 'access' });
  });

  it('writes each field of its own request when requests of different shapes interleave (the last-run memo)', () => {
    // JSON.stringify of the fields in pino's order, undefined ones left out: the line by definition.
    const reference = (x: AccessLogEntry, t: number): string =>
      `${JSON.stringify({ level: 30, time: isoTime(t), direction: x.direction, method: x.method, authority: x.authority, path: x.path, status: x.status, errorCode: x.errorCode, service: x.service, route: x.route, endpoint: x.endpoint, attempts: x.attempts, durationMs: Math.round(x.durationMs * 1000) / 1000, bytesIn: x.bytesIn, bytesOut: x.bytesOut, traceId: x.traceId, msg: 'access' })}\n`;
    const shapes: AccessLogEntry[] = [
      e,
      { ...e, direction: 'inbound', service: undefined, route: undefined },
      { ...e, status: 503, errorCode: 'UPSTREAM_TIMEOUT', endpoint: undefined, traceId: undefined },
      { ...e, method: 'POST', authority: 'orders', route: 'r"2', errorCode: 'NO_ROUTE' },
      { ...e, errorCode: undefined, service: 'orders' },
    ];
    for (let i = 0; i < 500; i++) {
      const x = { ...shapes[(i * 7 + (i >> 3)) % shapes.length]!, attempts: i % 3, bytesOut: i };
      expect(formatAccessLine(x, 1_000 * i)).toBe(reference(x, 1_000 * i));
    }
    // Runs that repeat and then change one field at a time (status, attempts, byte counts, a trace id
    // or none, a path that needs escaping, the second and the millisecond), so every
    // memoised piece is both reused and rebuilt.
    const paths = ['/u/1', '/a"b', '/caf\u00e9', '/t\tab', '/\ud83d\ude00', '/lone\ud800'];
    // Trace ids are 32 hex digits by the entry's contract (written unescaped): sidecar-observer.test.ts.
    const traces = [undefined, '0af7651916cd43dd8448eb211c80319c', '4bf92f3577b34da6a3ce929d0e0e4736'];
    let t = 1_764_000_000_000;
    for (let i = 0; i < 3_000; i++) {
      const x: AccessLogEntry = {
        ...shapes[(i >> 4) % shapes.length]!,
        status: [200, 200, 503, 404, 0][(i >> 2) % 5]!,
        attempts: (i >> 5) % 3,
        bytesIn: (i >> 3) % 2,
        bytesOut: i % 7 === 0 ? i : 1234,
        path: paths[(i >> 1) % paths.length]!,
        traceId: traces[((i >> 1) + (i >> 6)) % traces.length],
      };
      t += [0, 1, 7, 999, 1_000, 1_001][i % 6]!;
      expect(formatAccessLine(x, t)).toBe(reference(x, t));
    }
  });
});


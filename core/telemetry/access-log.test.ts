import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { AccessLog, type AccessLogEntry } from './access-log.js';

function collector() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, stream: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } };
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

describe('AccessLog', () => {
  it('writes one JSON line with the request facts, the query cut off', () => {
    const c = collector();
    const log = new AccessLog({ destination: c.stream });
    log.write(entry({ errorCode: 'UPSTREAM_RESET', status: 502 }));
    expect(c.lines).toHaveLength(1);
    const l = c.lines[0]!;
    expect(l).toMatchObject({ msg: 'access', direction: 'outbound', method: 'GET', authority: 'users', path: '/api/users/7', status: 502, errorCode: 'UPSTREAM_RESET', service: 'users', route: 'users-default', endpoint: '127.0.0.1:9101', attempts: 2, durationMs: 3.142, bytesIn: 0, bytesOut: 42, traceId: 'ab'.repeat(16) });
    expect(typeof l.time).toBe('string');
    expect(Number.isNaN(Date.parse(l.time as string))).toBe(false);
    expect(l.level).toBe(30);
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

  it('appends to a file asynchronously and has every line there after close()', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'meshlet-al-')), 'access.log');
    const log = new AccessLog({ destination: file });
    for (let i = 0; i < 500; i++) log.write(entry({ path: `/n/${i}` }));
    await log.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((s) => JSON.parse(s) as { path: string });
    expect(lines).toHaveLength(500);
    expect(lines[499]!.path).toBe('/n/499');
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

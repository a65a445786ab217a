// Against a real loopback server standing in for orders' sidecar inbound.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrafficDriver } from './traffic-driver.js';

let server: http.Server;
let port = 0;
let seen = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen++;
    const n = Number(req.url!.split('/').pop());
    res.setHeader('content-type', 'application/json');
    if (n % 10 === 0) {
      res.writeHead(502, n % 20 === 0 ? { 'x-meshlet-error': 'UPSTREAM_RESET' } : {});
      res.end(JSON.stringify({ error: { code: 'USERS_FAILED', details: { status: 503 } } }));
    } else res.end(JSON.stringify({ user: { servedBy: { instance: `users-${n % 3}` } } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise((r) => server.close(r)));

describe('TrafficDriver', () => {
  it('sends exactly maxRequests, reporting the serving instance or why each failed', async () => {
    seen = 0;
    const results: Array<[boolean, string | undefined, string | undefined]> = [];
    const d = new TrafficDriver({ target: { host: '127.0.0.1', port }, rps: 2000, concurrency: 4, maxRequests: 40, timeoutMs: 5000, signal: new AbortController().signal, onResult: (...r) => results.push(r) });
    await d.run();
    expect(results).toHaveLength(40);
    expect(seen).toBe(40);
    expect(d.sent).toBe(40);
    const failures = results.filter(([ok]) => !ok).map(([, , why]) => why).sort();
    // Paths /orders/1..40: 10 and 30 fail plainly, 20 and 40 with the mesh's code.
    expect(failures).toEqual(['502 UPSTREAM_RESET/USERS_FAILED (users: 503)', '502 UPSTREAM_RESET/USERS_FAILED (users: 503)', '502 USERS_FAILED (users: 503)', '502 USERS_FAILED (users: 503)']);
    expect(results.filter(([ok]) => ok).every(([, instance]) => /^users-[012]$/.test(instance!))).toBe(true);
  });

  it('stops sending when aborted', async () => {
    const stop = new AbortController();
    let n = 0;
    const d = new TrafficDriver({
      target: { host: '127.0.0.1', port },
      rps: 1000,
      concurrency: 2,
      maxRequests: 1_000_000,
      timeoutMs: 5000,
      signal: stop.signal,
      onResult: () => {
        if (++n === 25) stop.abort();
      },
    });
    await d.run();
    // At most the requests already in flight when it was aborted finish after it.
    expect(n).toBeGreaterThanOrEqual(25);
    expect(n).toBeLessThanOrEqual(27);
  });

  it('reports a refused connection as a failure', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const results: Array<string | undefined> = [];
    await new TrafficDriver({ target: { host: '127.0.0.1', port: deadPort }, rps: 100, concurrency: 1, maxRequests: 2, timeoutMs: 1000, signal: new AbortController().signal, onResult: (_ok, _i, why) => results.push(why) }).run();
    expect(results).toEqual(['connection error', 'connection error']);
  });

  it('refuses a zero rate', () => {
    expect(() => new TrafficDriver({ target: { host: '127.0.0.1', port }, rps: 0, concurrency: 1, maxRequests: 1, timeoutMs: 1, signal: new AbortController().signal, onResult: () => {} })).toThrow(RangeError);
  });
});

// What the upstream sees: hop-by-hop headers (and any the client names in Connection) removed,
// X-Forwarded-For/-Proto/-Host and Forwarded appended, an x-request-id added unless the client sent
// one, and Host naming the service the client addressed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, rawExchange, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
  sidecar = await startSidecar({ config: { services: { users: { endpoints: [{ address: up.address }] } } }, args: ['--app', up.address] });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

describe('forwarding headers', () => {
  it('strips hop-by-hop headers on the way to the upstream', async () => {
    const r = await rawExchange(sidecar.outbound, [
      'GET /h HTTP/1.1\r\nHost: users\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Kept: k\r\n\r\n',
    ]);
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body).headers as Record<string, string>;
    for (const h of ['x-secret', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection', 'upgrade']) expect(seen[h], h).toBeUndefined();
    expect(seen['x-kept']).toBe('k');
    expect(seen.host).toBe('users');
  });

  it('appends forwarding headers and adds a request id', async () => {
    const seen = (await call(sidecar.outbound, { host: 'users:80', path: '/f', headers: { 'x-forwarded-for': '203.0.113.9' } })).json().headers;
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('users:80');
    expect(seen.forwarded).toBe('for=127.0.0.1;host="users:80";proto=http');
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.host).toBe('users:80');
  });

  it('keeps the client\'s request id', async () => {
    const seen = (await call(sidecar.outbound, { host: 'users', path: '/id', headers: { 'x-request-id': 'abc-123' } })).json().headers;
    expect(seen['x-request-id']).toBe('abc-123');
  });

  it('sets forwarding headers on the inbound path too', async () => {
    const seen = (await call(sidecar.inbound!, { host: 'users', path: '/in', headers: { connection: 'x-drop', 'x-drop': '1' } })).json().headers;
    expect(seen['x-drop']).toBeUndefined();
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.host).toBe('users');
  });
});

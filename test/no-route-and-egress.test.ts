// A request for a host that is no mesh service gets 404 NO_ROUTE, unless egress passthrough is on,
// in which case it goes to that host directly. Mesh services resolve by Host and by proxy-form URI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, rawExchange, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let users: Upstream;
let outside: Upstream;
let closed: SidecarHandle;
let open: SidecarHandle;

beforeAll(async () => {
  users = await startUpstream({ id: 'users' });
  outside = await startUpstream({ id: 'outside' });
  const services = { users: { endpoints: [{ address: users.address }], hosts: ['users.mesh.test'] } };
  [closed, open] = await Promise.all([startSidecar({ config: { services } }), startSidecar({ config: { services, egress: { passthrough: true } } })]);
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all([users.close(), outside.close()]);
});

describe('no route and egress', () => {
  it('routes mesh services by Host, by an extra host name and by proxy-form URI', async () => {
    expect((await call(closed.outbound, { host: 'users', path: '/a' })).headers['x-upstream-id']).toBe('users');
    expect((await call(closed.outbound, { host: 'users.mesh.test:80', path: '/a' })).headers['x-upstream-id']).toBe('users');
    const proxied = await rawExchange(closed.outbound, ['GET http://users/proxy?q=1 HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n']);
    expect(proxied.status).toBe(200);
    expect(JSON.parse(proxied.body)).toMatchObject({ id: 'users', path: '/proxy?q=1' });
  });

  it('answers 404 NO_ROUTE for an unknown host when egress passthrough is off', async () => {
    const before = (await outside.stats()).requests;
    const byHost = await call(closed.outbound, { host: outside.address, path: '/x' });
    expect(byHost.status).toBe(404);
    expect(byHost.headers['x-meshlet-error']).toBe('NO_ROUTE');
    expect(byHost.json().error).toMatchObject({ code: 'NO_ROUTE' });
    expect(byHost.json().error.message).toContain('127.0.0.1');
    const byUri = await rawExchange(closed.outbound, [`GET http://${outside.address}/x HTTP/1.1\r\nHost: ${outside.address}\r\nConnection: close\r\n\r\n`]);
    expect(byUri.status).toBe(404);
    expect(byUri.headers['x-meshlet-error']).toBe('NO_ROUTE');
    expect((await outside.stats()).requests).toBe(before);
  });

  it('forwards an unknown host directly when egress passthrough is on', async () => {
    const byHost = await call(open.outbound, { host: outside.address, path: '/egress' });
    expect(byHost.status).toBe(200);
    expect(byHost.json()).toMatchObject({ id: 'outside', path: '/egress' });
    const byUri = await rawExchange(open.outbound, [`GET http://${outside.address}/egress-uri HTTP/1.1\r\nHost: ${outside.address}\r\nConnection: close\r\n\r\n`]);
    expect(byUri.status).toBe(200);
    expect(JSON.parse(byUri.body)).toMatchObject({ id: 'outside', path: '/egress-uri' });
    // Mesh services still go through their routes.
    expect((await call(open.outbound, { host: 'users', path: '/a' })).headers['x-upstream-id']).toBe('users');
  });

  it('refuses requests that name nothing routable with clear errors', async () => {
    const noHost = await rawExchange(closed.outbound, ['GET /x HTTP/1.0\r\n\r\n']);
    expect(noHost.status).toBe(400);
    expect(noHost.headers['x-meshlet-error']).toBe('BAD_REQUEST');
    const https = await rawExchange(closed.outbound, ['GET https://users/x HTTP/1.1\r\nHost: users\r\nConnection: close\r\n\r\n']);
    expect(https.status).toBe(400);
    expect(JSON.parse(https.body).error.message).toContain('https://');
    const connect = await rawExchange(closed.outbound, [`CONNECT ${outside.address} HTTP/1.1\r\nHost: ${outside.address}\r\n\r\n`]);
    expect(connect.status).toBe(405);
    expect(connect.headers['x-meshlet-error']).toBe('METHOD_NOT_ALLOWED');
    expect(JSON.parse(connect.body).error.code).toBe('METHOD_NOT_ALLOWED');
  });
});

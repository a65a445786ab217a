// Requests with bytes that are not allowed in header names or values (control characters, bare CR,
// NUL, non-token names) are refused with 400 BAD_REQUEST; the upstream never sees them and other
// clients keep being served.
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

const bad: Record<string, Buffer> = {
  'a NUL byte in a header value': Buffer.from('GET /a HTTP/1.1\r\nHost: users\r\nX-Evil: a\u0000b\r\n\r\n', 'latin1'),
  'a bare CR in a header value': Buffer.from('GET /a HTTP/1.1\r\nHost: users\r\nX-Evil: a\rb\r\n\r\n', 'latin1'),
  'a control character in a header value': Buffer.from('GET /a HTTP/1.1\r\nHost: users\r\nX-Evil: a\u0001b\r\n\r\n', 'latin1'),
  'a header name that is not a token': Buffer.from('GET /a HTTP/1.1\r\nHost: users\r\nX(Evil): 1\r\n\r\n', 'latin1'),
  'a line folded onto the previous header (obs-fold)': Buffer.from('GET /a HTTP/1.1\r\nHost: users\r\nX-Evil: a\r\n b\r\n\r\n', 'latin1'),
  'a space inside the request target': Buffer.from('GET /a b HTTP/1.1\r\nHost: users\r\n\r\n', 'latin1'),
  'a header line without a colon': Buffer.from('GET /a HTTP/1.1\r\nHost: users\r\nNoColonHere\r\n\r\n', 'latin1'),
};

describe('bad header bytes', () => {
  for (const [name, bytes] of Object.entries(bad)) {
    it(`refuses ${name}`, async () => {
      const before = (await up.stats()).requests;
      for (const listener of [sidecar.outbound, sidecar.inbound!]) {
        const r = await rawExchange(listener, [bytes]);
        expect(r.status).toBe(400);
        expect(r.headers['x-meshlet-error']).toBe('BAD_REQUEST');
        expect(JSON.parse(r.body).error.code).toBe('BAD_REQUEST');
      }
      expect((await up.stats()).requests).toBe(before);
      expect((await call(sidecar.outbound, { host: 'users', path: '/ok' })).status).toBe(200);
    });
  }
});

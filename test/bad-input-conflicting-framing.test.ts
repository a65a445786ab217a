// Smuggling-shaped requests (Content-Length with Transfer-Encoding, two Content-Lengths, an unknown
// transfer coding) are refused with 400 BAD_REQUEST before anything reaches the upstream, and other
// clients' requests keep succeeding.
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

const smuggles: Record<string, string> = {
  'Content-Length and Transfer-Encoding together':
    'POST /a HTTP/1.1\r\nHost: users\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: users\r\n\r\n',
  'two different Content-Lengths': 'POST /a HTTP/1.1\r\nHost: users\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc',
  'an unknown transfer coding last': 'POST /a HTTP/1.1\r\nHost: users\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
  'a space before the header colon': 'POST /a HTTP/1.1\r\nHost: users\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc',
};

describe('conflicting request framing', () => {
  for (const [name, bytes] of Object.entries(smuggles)) {
    for (const listener of ['outbound', 'inbound'] as const) {
      it(`refuses ${name} on the ${listener} listener`, async () => {
        const before = (await up.stats()).requests;
        const r = await rawExchange(sidecar[listener]!, [bytes]);
        expect(r.status).toBe(400);
        expect(r.headers['x-meshlet-error']).toBe('BAD_REQUEST');
        expect(JSON.parse(r.body).error.code).toBe('BAD_REQUEST');
        expect(r.closed).toBe(true);
        // Nothing (neither the request nor a smuggled one) reached the upstream.
        expect((await up.stats()).requests).toBe(before);
        // Other clients are not disturbed.
        expect((await call(sidecar.outbound, { host: 'users', path: '/ok' })).status).toBe(200);
      });
    }
  }
});

// Request headers beyond --max-header-size get 431 HEADERS_TOO_LARGE on that connection only; a
// request just under the limit passes, and other clients keep being served meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, rawExchange, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

const LIMIT = 8 * 1024;
let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
  sidecar = await startSidecar({
    config: { services: { users: { endpoints: [{ address: up.address }] } } },
    args: ['--app', up.address, '--max-header-size', String(LIMIT)],
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

describe('oversized headers', () => {
  it('answers 431 HEADERS_TOO_LARGE for one huge header, on both listeners', async () => {
    const before = (await up.stats()).requests;
    for (const listener of [sidecar.outbound, sidecar.inbound!]) {
      const r = await rawExchange(listener, [`GET /a HTTP/1.1\r\nHost: users\r\nX-Big: ${'a'.repeat(LIMIT + 100)}\r\n\r\n`]);
      expect(r.status).toBe(431);
      expect(r.headers['x-meshlet-error']).toBe('HEADERS_TOO_LARGE');
      expect(JSON.parse(r.body).error.code).toBe('HEADERS_TOO_LARGE');
    }
    expect((await up.stats()).requests).toBe(before);
  });

  it('answers 431 for many small headers adding up past the limit', async () => {
    const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'v'.repeat(20)}\r\n`).join('');
    const r = await rawExchange(sidecar.outbound, [`GET /a HTTP/1.1\r\nHost: users\r\n${many}\r\n`]);
    expect(r.status).toBe(431);
    expect(r.headers['x-meshlet-error']).toBe('HEADERS_TOO_LARGE');
  });

  it('passes headers just under the limit, while a too-large one is refused alongside', async () => {
    const [big, ok] = await Promise.all([
      rawExchange(sidecar.outbound, [`GET /a HTTP/1.1\r\nHost: users\r\nX-Big: ${'a'.repeat(LIMIT * 2)}\r\n\r\n`]),
      call(sidecar.outbound, { host: 'users', path: '/fits', headers: { 'x-fits': 'a'.repeat(LIMIT - 1024) } }),
    ]);
    expect(big.status).toBe(431);
    expect(ok.status).toBe(200);
    expect(ok.json().headers['x-fits']).toHaveLength(LIMIT - 1024);
  });
});

// A client that trickles its request headers (slowloris) gets 408 REQUEST_TIMEOUT after
// --headers-timeout and its connection is closed, while other clients' requests keep succeeding.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, load, rawExchange, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
  sidecar = await startSidecar({
    config: { services: { users: { endpoints: [{ address: up.address }] } } },
    args: ['--app', up.address, '--headers-timeout', '1s'],
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

describe('slow headers', () => {
  it('answers 408 REQUEST_TIMEOUT to slow clients while others are served', async () => {
    // Ten slow clients, each sending one header line every 300 ms and never finishing.
    const trickle = ['GET /slow HTTP/1.1\r\nHost: users\r\n', ...Array.from({ length: 40 }, (_, i) => `X-Slow-${i}: 1\r\n`)];
    let slowDone = false;
    const slow = Promise.all(Array.from({ length: 10 }, (_, i) => rawExchange(i % 2 ? sidecar.outbound : sidecar.inbound!, trickle, { gapMs: 300, timeoutMs: 15_000 }))).finally(() => (slowDone = true));
    // Meanwhile, normal traffic until the slow clients are dealt with: bounded in count and time.
    const normal = await load({ total: 20_000, concurrency: 4, timeoutMs: 15_000, until: () => slowDone }, async (i) => (await call(sidecar.outbound, { host: 'users', path: `/n/${i}` })).status);
    const results = await slow;
    console.log(`${normal.results.length} normal requests served while 10 slow clients were timed out`);
    for (const r of results) {
      expect(r.status).toBe(408);
      expect(r.headers['x-meshlet-error']).toBe('REQUEST_TIMEOUT');
      expect(r.closed).toBe(true);
    }
    expect(normal.errors).toEqual([]);
    expect(normal.results.length).toBeGreaterThan(0);
    expect(normal.results.every((s) => s === 200)).toBe(true);
    // None of the slow requests reached the upstream.
    expect((await up.stats()).requests).toBe(normal.results.length);
  });
});

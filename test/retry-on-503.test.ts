// A 503 from the upstream is retried (when the policy says so) and the client sees the success;
// methods that are not idempotent are not retried; attempts bound the tries.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let flaky: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  flaky = await startUpstream({ id: 'flaky', behaviour: { kind: 'fail-first', count: 2, status: 503 } });
  sidecar = await startSidecar({
    config: {
      services: {
        users: {
          endpoints: [{ address: flaky.address }],
          retry: { attempts: 3, on: ['503'], backoff: { base: '1ms', max: '5ms' } },
          // Keep the breaker out of the way: this test is about retries.
          circuitBreaker: { consecutiveFailures: 100 },
        },
      },
    },
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await flaky.close();
});

describe('retry on 503', () => {
  it('retries a GET twice and returns the third answer', async () => {
    await flaky.setBehaviour({ kind: 'fail-first', count: 2, status: 503 });
    const before = (await flaky.stats()).requests;
    const r = await call(sidecar.outbound, { host: 'users', path: '/users/1' });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ id: 'flaky', method: 'GET', path: '/users/1' });
    expect((await flaky.stats()).requests - before).toBe(3);
  });

  it('gives up after the configured attempts and relays the last 503', async () => {
    await flaky.setBehaviour({ kind: 'fail-first', count: 5, status: 503 });
    const before = (await flaky.stats()).requests;
    const r = await call(sidecar.outbound, { host: 'users', path: '/users/2' });
    expect(r.status).toBe(503);
    expect(r.text).toContain('failure 3 of 5');
    expect((await flaky.stats()).requests - before).toBe(3);
  });

  it('does not retry a POST (not idempotent)', async () => {
    await flaky.setBehaviour({ kind: 'fail-first', count: 1, status: 503 });
    const before = (await flaky.stats()).requests;
    const r = await call(sidecar.outbound, { host: 'users', path: '/orders', method: 'POST', body: '{"x":1}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(503);
    expect((await flaky.stats()).requests - before).toBe(1);
  });

  it('retries a PUT with a small body and replays the same body', async () => {
    await flaky.setBehaviour({ kind: 'fail-first', count: 1, status: 503 });
    const body = JSON.stringify({ name: 'ada', pad: 'p'.repeat(5000) });
    const r = await call(sidecar.outbound, { host: 'users', path: '/users/3', method: 'PUT', body, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ bodyBytes: Buffer.byteLength(body), bodySha256: createHash('sha256').update(body).digest('hex') });
  });
});

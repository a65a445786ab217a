// A hanging upstream is cut at the request deadline: the client gets 504 UPSTREAM_TIMEOUT and the
// upstream sees its connection closed (nothing is left open). Per-try timeouts cut each try.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let hanging: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  hanging = await startUpstream({ id: 'hanging', behaviour: { kind: 'hang' } });
  sidecar = await startSidecar({
    config: {
      services: {
        users: { endpoints: [{ address: hanging.address }], timeout: '300ms', circuitBreaker: { consecutiveFailures: 100 } },
        'users-per-try': {
          endpoints: [{ address: hanging.address }],
          timeout: '5s',
          retry: { attempts: 3, perTryTimeout: '150ms', on: ['timeout'], backoff: { base: '1ms', max: '2ms' } },
          circuitBreaker: { consecutiveFailures: 100 },
        },
      },
    },
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await hanging.close();
});

describe('deadline cuts a hanging upstream', () => {
  it('answers 504 UPSTREAM_TIMEOUT and closes the upstream connection', async () => {
    const before = await hanging.stats();
    const started = performance.now();
    const r = await call(sidecar.outbound, { host: 'users', path: '/slow' });
    const elapsed = performance.now() - started;
    console.log(`504 after ${elapsed.toFixed(1)} ms for a 300 ms deadline`);
    expect(r.status).toBe(504);
    expect(r.headers['x-meshlet-error']).toBe('UPSTREAM_TIMEOUT');
    expect(r.json().error.code).toBe('UPSTREAM_TIMEOUT');
    // The deadline, not some other timer, produced it.
    expect(elapsed).toBeGreaterThanOrEqual(290);
    // The upstream saw the request abandoned and its connection closed.
    const after = await waitFor(async () => {
      const s = await hanging.stats();
      // The connection that carried the request is closed (undici may open a fresh idle one at once).
      return s.aborted > before.aborted && s.inflight === 0 && s.connectionsClosed > before.connectionsClosed ? s : undefined;
    }, { timeoutMs: 15_000, what: 'upstream connection closed' });
    expect(after.requests - before.requests).toBe(1);
  });

  it('cuts each try at the per-try timeout, retries, then answers 504', async () => {
    const before = await hanging.stats();
    const started = performance.now();
    const r = await call(sidecar.outbound, { host: 'users-per-try', path: '/slow' });
    const elapsed = performance.now() - started;
    console.log(`3 tries of 150 ms → 504 after ${elapsed.toFixed(1)} ms`);
    expect(r.status).toBe(504);
    expect(r.headers['x-meshlet-error']).toBe('UPSTREAM_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(3 * 150 - 10);
    const after = await waitFor(async () => {
      const s = await hanging.stats();
      return s.aborted - before.aborted === 3 && s.inflight === 0 && s.connectionsClosed - before.connectionsClosed >= 3 ? s : undefined;
    }, { timeoutMs: 15_000, what: 'three upstream tries abandoned and closed' });
    expect(after.requests - before.requests).toBe(3);
  });
});

// The endpoint level with fake time: the per-try timer is armed from the injected clock, so the cut
// at min(deadline, perTryTimeout) is checked without waiting. The pool is a fake that, like undici,
// fails the exchange with the signal's reason when it is aborted.
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../core/clock.js';
import { isMeshError } from '../core/errors.js';
import type { MeshRequest, MeshResponse, RequestContext } from '../core/handler.js';
import { makeSnapshot } from '../core/snapshot.js';
import { noopObserver } from '../core/telemetry/observer.js';
import { PoolRegistry } from './pool-registry.js';
import { buildRuntime } from './runtime.js';
import { AttemptSignal, type UpstreamSignal } from './upstream/attempt-signal.js';
import type { UpstreamPool } from './upstream/upstream-pool.js';

function hangingPool(): UpstreamPool & { calls: number } {
  const pool = {
    calls: 0,
    forward(_req: MeshRequest, _headers: unknown, signal: UpstreamSignal): Promise<MeshResponse> {
      pool.calls++;
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    },
  };
  return pool as unknown as UpstreamPool & { calls: number };
}

async function setup(service: Record<string, unknown>) {
  const clock = new FakeClock();
  const pools = new PoolRegistry();
  const rt = buildRuntime(makeSnapshot('1', { services: { users: { endpoints: [{ address: '127.0.0.1:9101' }], ...service } } }, {}), undefined, { clock, pools, observer: noopObserver });
  await pools.closeAll(); // the real pools are never used: the endpoint gets the fake
  const pool = hangingPool();
  rt.services.get('users')!.endpoints[0]!.pool = pool;
  const route = rt.routes.resolve('users', 'users', 'GET', '/', {})!;
  const req: MeshRequest = { method: 'GET', path: '/', authority: 'users', headers: {}, body: null, bodyless: true };
  const ctx: RequestContext = { signal: new AttemptSignal(), deadline: Infinity, attempt: 1, info: { attempts: 1, retries: 0 } };
  let outcome: unknown;
  void route.handler(req, ctx).then((r) => (outcome = r), (e: unknown) => (outcome = e));
  const settle = async (): Promise<unknown> => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
    return outcome;
  };
  return { clock, pool, ctx, settle };
}

describe('Backend per-attempt deadline', () => {
  it('cuts a hanging try at the per-try timeout, not before', async () => {
    const t = await setup({ timeout: '1s', retry: { attempts: 1, perTryTimeout: '200ms' } });
    t.clock.advance(199);
    expect(await t.settle()).toBeUndefined();
    t.clock.advance(1);
    const e = await t.settle();
    expect(isMeshError(e, 'UPSTREAM_TIMEOUT')).toBe(true);
    expect((e as { details?: { perTry?: boolean } }).details?.perTry).toBe(true);
    expect(t.pool.calls).toBe(1);
  });

  it('cuts at the total deadline when no per-try timeout is set', async () => {
    const t = await setup({ timeout: '300ms', retry: { attempts: 3, on: ['timeout'] } }); // no per-try timeout
    t.clock.advance(299);
    expect(await t.settle()).toBeUndefined();
    t.clock.advance(1);
    const e = await t.settle();
    expect(isMeshError(e, 'UPSTREAM_TIMEOUT')).toBe(true);
    expect((e as { details?: { perTry?: boolean } }).details?.perTry).toBe(false);
    expect(t.pool.calls).toBe(1); // no time left for a retry
  });

  it('retries a try cut by its per-try timeout while the deadline allows, then gives up at the deadline', async () => {
    const t = await setup({ timeout: '500ms', retry: { attempts: 5, perTryTimeout: '200ms', on: ['timeout'], backoff: { base: '1ms', max: '1ms' } } });
    for (let ms = 0; ms < 600 && (await t.settle()) === undefined; ms++) t.clock.advance(1);
    expect(isMeshError(await t.settle(), 'UPSTREAM_TIMEOUT')).toBe(true);
    expect(t.pool.calls).toBe(3); // 200 + 200 + the last 100 ms cut by the deadline
    expect(t.ctx.info.retries).toBe(2);
  });
});

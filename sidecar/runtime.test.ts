import { describe, expect, it } from 'vitest';
import { FakeClock } from '../core/clock.js';
import { makeSnapshot } from '../core/snapshot.js';
import { noopObserver } from '../core/telemetry/observer.js';
import { isMeshError } from '../core/errors.js';
import { PoolRegistry } from './pool-registry.js';
import { buildRuntime } from './runtime.js';

const deps = () => ({ clock: new FakeClock(), pools: new PoolRegistry(), observer: noopObserver });

const config = (extra: Record<string, unknown> = {}) => ({
  services: {
    users: {
      endpoints: [{ address: '127.0.0.1:9101', labels: { version: 'v1' } }, { address: '127.0.0.1:9102', labels: { version: 'v2' } }],
      circuitBreaker: { consecutiveFailures: 1 },
      ...extra,
    },
  },
});

describe('buildRuntime', () => {
  it('keeps endpoint state (breakers, pools) across snapshots when address and policy are unchanged', async () => {
    const d = deps();
    const first = buildRuntime(makeSnapshot('1', config(), {}), undefined, d);
    const ep = first.services.get('users')!.endpoints[0]!;
    ep.breaker.onFailure(ep.breaker.onRequestStart());
    expect(ep.breaker.state).toBe('open');

    const second = buildRuntime(makeSnapshot('2', config({ timeout: '3s' }), { users: [{ address: '127.0.0.1:9103', weight: 1, labels: {}, source: 'registered' }] }), first, d);
    const eps = second.services.get('users')!.endpoints;
    expect(eps.map((e) => e.address)).toEqual(['127.0.0.1:9101', '127.0.0.1:9102', '127.0.0.1:9103']);
    expect(eps[0]).toBe(ep);
    expect(eps[0]!.breaker.state).toBe('open');
    expect(eps[2]!.source).toBe('registered');
    await d.pools.closeAll();
  });

  it('starts breakers afresh when the breaker policy changes', async () => {
    const d = deps();
    const first = buildRuntime(makeSnapshot('1', config(), {}), undefined, d);
    const ep = first.services.get('users')!.endpoints[0]!;
    ep.breaker.onFailure(ep.breaker.onRequestStart());
    const second = buildRuntime(makeSnapshot('2', config({ circuitBreaker: { consecutiveFailures: 3 } }), {}), first, d);
    expect(second.services.get('users')!.endpoints[0]!.breaker.state).toBe('closed');
    await d.pools.closeAll();
  });

  it('refuses a snapshot whose config is invalid, naming the violation', () => {
    let err: unknown;
    try {
      buildRuntime(makeSnapshot('3', { services: { users: { timeout: 'soon' } } } as never, {}), undefined, deps());
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain('services.users.timeout');
  });

  it('resolves routes: header match first, then the service default; subsets select endpoints', async () => {
    const d = deps();
    const rt = buildRuntime(
      makeSnapshot(
        '1',
        {
          ...config(),
          routes: [{ name: 'canary', match: { service: 'users', headers: { 'x-canary': '1' } }, backends: [{ service: 'users', subset: { version: 'v2' } }] }],
        },
        {},
      ),
      undefined,
      d,
    );
    expect(rt.routes.serviceFor('users')).toBe('users');
    expect(rt.routes.resolve('users', 'users', 'GET', '/x', { 'x-canary': '1' })?.name).toBe('canary');
    expect(rt.routes.resolve('users', 'users', 'GET', '/x', {})?.name).toBe('default');
    expect(rt.routes.resolve('users', 'users', 'GET', '/x', { 'x-canary': '1' })?.upgradeBackend.endpoints.map((e) => e.address)).toEqual(['127.0.0.1:9102']);
    await d.pools.closeAll();
  });
});

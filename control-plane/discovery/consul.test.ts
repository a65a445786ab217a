// Unit tests with a scripted health query (the real client against the Consul HTTP double is in
// test/discovery-consul-*.test.ts).
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { silentLogger } from '../../core/log.js';
import { consulClientOptions, consulEntriesToEndpoints, ConsulProvider, defaultConsulAddress, type ConsulHealthQuery } from './consul.js';
import type { DiscoveryUpdate } from './provider.js';

const entry = (o: { id: string; port: number; address?: string; node?: string; tags?: string[]; meta?: Record<string, string>; status?: string; weights?: { Passing: number; Warning: number } }) => ({
  Node: { Node: 'n1', Address: o.node ?? '127.0.0.1' },
  Service: { ID: o.id, Service: 'users', Address: o.address ?? '', Port: o.port, Tags: o.tags ?? [], Meta: o.meta ?? {}, Weights: o.weights ?? { Passing: 1, Warning: 1 } },
  Checks: [{ Status: 'passing' }, { Status: o.status ?? 'passing' }],
});

describe('consulEntriesToEndpoints', () => {
  it('maps address (service, else node), port, weights, meta and tags to labels', () => {
    expect(
      consulEntriesToEndpoints([
        entry({ id: 'a', port: 9101, address: '127.0.0.5', tags: ['canary'], meta: { version: 'v2' }, weights: { Passing: 3, Warning: 1 } }),
        entry({ id: 'b', port: 9102, node: '::1' }),
        entry({ id: 'c', port: 9103, status: 'warning', weights: { Passing: 5, Warning: 2 } }),
      ]),
    ).toEqual([
      { address: '127.0.0.5:9101', weight: 3, labels: { version: 'v2', 'tag.canary': 'true' }, source: 'consul' },
      { address: '[::1]:9102', weight: 1, labels: {}, source: 'consul' },
      { address: '127.0.0.1:9103', weight: 2, labels: {}, source: 'consul' },
    ]);
  });

  it('drops critical instances, weight-0 ones and malformed entries; refuses a non-list body', () => {
    expect(
      consulEntriesToEndpoints([
        entry({ id: 'a', port: 1, status: 'critical' }),
        entry({ id: 'b', port: 2, status: 'warning', weights: { Passing: 1, Warning: 0 } }),
        { Service: { Port: 3 } },
        { Node: { Address: '127.0.0.1' }, Service: { Port: 70000 } },
        null,
      ]),
    ).toEqual([]);
    expect(() => consulEntriesToEndpoints({ error: 'x' })).toThrow(/list/);
  });
});

describe('consulClientOptions', () => {
  it('accepts host:port and http(s) URLs, rejects others', () => {
    expect(consulClientOptions('127.0.0.1:8500')).toEqual({ host: '127.0.0.1', port: 8500, secure: false });
    expect(consulClientOptions('https://consul.local:8501/')).toEqual({ host: 'consul.local', port: 8501, secure: true });
    expect(() => consulClientOptions('consul.local')).toThrow(/host:port/);
  });

  it('takes the ACL token from CONSUL_HTTP_TOKEN and the default agent from CONSUL_HTTP_ADDR', () => {
    expect(consulClientOptions('127.0.0.1:8500', { CONSUL_HTTP_TOKEN: ' s3cret ' })).toEqual({ host: '127.0.0.1', port: 8500, secure: false, defaults: { token: 's3cret' } });
    expect(consulClientOptions('127.0.0.1:8500', {})).toEqual({ host: '127.0.0.1', port: 8500, secure: false });
    expect(defaultConsulAddress({ CONSUL_HTTP_ADDR: 'https://10.0.0.5:8501' })).toBe('https://10.0.0.5:8501');
    expect(defaultConsulAddress({})).toBe('127.0.0.1:8500');
  });
});

describe('ConsulProvider', () => {
  /** Each call parks until the test answers it, so the test sees every request the provider makes. */
  function scripted() {
    const calls: Array<{ opts: Parameters<ConsulHealthQuery>[0]; answer: (index: number | undefined, body: unknown) => void; fail: (e: Error) => void }> = [];
    const query: ConsulHealthQuery = (opts) =>
      new Promise((resolve, reject) => {
        opts.ctx.once('cancel', () => reject(new Error('cancelled')));
        calls.push({ opts, answer: (index, body) => resolve([{ headers: index === undefined ? {} : { 'x-consul-index': String(index) } }, body]), fail: reject });
      });
    return { calls, query };
  }
  const flush = async () => {
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  };

  it('follows X-Consul-Index, resets to 0 when it goes backwards, rate-limits fast answers', async () => {
    const clock = new FakeClock();
    const s = scripted();
    const updates: DiscoveryUpdate[] = [];
    const p = new ConsulProvider('users', { wait: '5s', tag: 'http', dc: 'dc1' }, { log: silentLogger, clock, emptyGraceMs: 0, query: s.query });
    p.start((u) => updates.push(u));
    await flush();
    expect(s.calls[0]!.opts).toMatchObject({ service: 'users', passing: true, tag: 'http', dc: 'dc1', index: '0', wait: '5000ms' });
    s.calls[0]!.answer(42, [entry({ id: 'a', port: 9101 })]);
    await flush();
    expect(updates.at(-1)).toMatchObject({ stale: false, endpoints: [{ address: '127.0.0.1:9101' }] });
    // Answered at once: the next query waits out the rate limit.
    expect(s.calls).toHaveLength(1);
    clock.advance(100);
    await flush();
    expect(s.calls[1]!.opts.index).toBe('42');
    clock.advance(5_000);
    s.calls[1]!.answer(7, [entry({ id: 'b', port: 9102 })]);
    await flush();
    expect(updates.at(-1)!.endpoints.map((e) => e.address)).toEqual(['127.0.0.1:9102']);
    expect(s.calls[2]!.opts.index).toBe('0');
    clock.advance(1_000);
    s.calls[2]!.answer(0, [entry({ id: 'b', port: 9102 })]);
    await flush();
    clock.advance(100);
    await flush();
    // An index below 1 is treated as 1 (Consul's sanity rule), so the query still blocks.
    expect(s.calls[3]!.opts.index).toBe('1');
    await p.stop();
  });

  it('on errors keeps the last good set stale and backs off; no index header is an error too', async () => {
    const clock = new FakeClock();
    const s = scripted();
    const updates: DiscoveryUpdate[] = [];
    const p = new ConsulProvider('users', { service: 'users-svc', passingOnly: false }, { log: silentLogger, clock, emptyGraceMs: 0, query: s.query });
    p.start((u) => updates.push(u));
    await flush();
    expect(s.calls[0]!.opts).toMatchObject({ service: 'users-svc', passing: false });
    s.calls[0]!.answer(3, [entry({ id: 'a', port: 9101 })]);
    await flush();
    clock.advance(100);
    await flush();
    s.calls[1]!.fail(new Error('500 Internal Server Error'));
    await flush();
    expect(updates.at(-1)).toMatchObject({ stale: true, endpoints: [{ address: '127.0.0.1:9101', stale: true }] });
    expect(updates.at(-1)!.error).toContain('500');
    clock.advance(249);
    await flush();
    expect(s.calls).toHaveLength(2);
    clock.advance(1);
    await flush();
    s.calls[2]!.answer(undefined, []);
    await flush();
    expect(updates.at(-1)).toMatchObject({ stale: true });
    expect(updates.at(-1)!.error).toMatch(/X-Consul-Index/);
    clock.advance(500); // second failure: 2 × 250 ms
    await flush();
    s.calls[3]!.answer(4, [entry({ id: 'a', port: 9101 }), entry({ id: 'c', port: 9103 })]);
    await flush();
    expect(updates.at(-1)).toMatchObject({ stale: false });
    expect(updates.at(-1)!.endpoints).toHaveLength(2);
    await p.stop();
  });
});

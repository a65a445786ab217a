// Unit tests with a scripted resolver (the real one against dnsmasq is in test/discovery-dns-*.test.ts).
import dns from 'node:dns';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { silentLogger } from '../../core/log.js';
import { DnsProvider, resolveDnsSpec, type DnsResolver } from './dns.js';
import type { DiscoveryUpdate } from './provider.js';

const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

/** Answers from a table; a missing name is NOTFOUND. `fail` makes every query fail with that code. */
class ScriptedResolver implements DnsResolver {
  srv = new Map<string, dns.SrvRecord[]>();
  a = new Map<string, dns.RecordWithTtl[]>();
  aaaa = new Map<string, dns.RecordWithTtl[]>();
  fail: string | null = null;
  queries: string[] = [];
  async resolveSrv(name: string) {
    this.queries.push(`SRV ${name}`);
    if (this.fail) throw err(this.fail);
    const r = this.srv.get(name);
    if (!r) throw err(dns.NOTFOUND);
    return r;
  }
  async resolve4(name: string) {
    this.queries.push(`A ${name}`);
    if (this.fail) throw err(this.fail);
    const r = this.a.get(name);
    if (!r) throw err(dns.NODATA);
    return r;
  }
  async resolve6(name: string) {
    this.queries.push(`AAAA ${name}`);
    if (this.fail) throw err(this.fail);
    const r = this.aaaa.get(name);
    if (!r) throw err(dns.NODATA);
    return r;
  }
  cancel() {}
}

const flush = () => new Promise<void>((r) => setImmediate(r));

describe('resolveDnsSpec', () => {
  it('uses only the lowest-priority SRV group, SRV ports and weights (0 → 1), A and AAAA targets', async () => {
    const r = new ScriptedResolver();
    r.srv.set('_http._tcp.users.mesh.test', [
      { name: 'u1.mesh.test', port: 9101, priority: 10, weight: 5 },
      { name: 'u2.mesh.test', port: 9102, priority: 10, weight: 0 },
      { name: 'backup.mesh.test', port: 9199, priority: 20, weight: 100 },
    ]);
    r.a.set('u1.mesh.test', [{ address: '127.0.0.11', ttl: 30 }]);
    r.aaaa.set('u1.mesh.test', [{ address: '::1', ttl: 7 }]);
    r.a.set('u2.mesh.test', [{ address: '127.0.0.12', ttl: 60 }]);
    r.a.set('backup.mesh.test', [{ address: '127.0.0.99', ttl: 1 }]);
    const got = await resolveDnsSpec(r, { srv: '_http._tcp.users.mesh.test' });
    expect(got.endpoints).toEqual([
      { address: '127.0.0.11:9101', weight: 5, labels: {}, source: 'dns' },
      { address: '[::1]:9101', weight: 5, labels: {}, source: 'dns' },
      { address: '127.0.0.12:9102', weight: 1, labels: {}, source: 'dns' },
    ]);
    expect(got.ttlSeconds).toBe(7);
    expect(r.queries).not.toContain('A backup.mesh.test');
  });

  it('an SRV name that does not exist is an empty answer, not an error', async () => {
    const r = new ScriptedResolver();
    expect(await resolveDnsSpec(r, { srv: '_http._tcp.none.mesh.test' })).toEqual({ endpoints: [], ttlSeconds: undefined });
  });

  it('a transport failure is an error (the caller keeps the last good set)', async () => {
    const r = new ScriptedResolver();
    r.fail = dns.CONNREFUSED;
    await expect(resolveDnsSpec(r, { srv: '_http._tcp.users.mesh.test' })).rejects.toMatchObject({ code: dns.CONNREFUSED });
    await expect(resolveDnsSpec(r, { host: 'users.mesh.test', port: 80 })).rejects.toMatchObject({ code: dns.CONNREFUSED });
  });

  it('A/AAAA mode adds the configured port; an IP-literal SRV target needs no lookup', async () => {
    const r = new ScriptedResolver();
    r.a.set('users.mesh.test', [{ address: '127.0.0.21', ttl: 4 }, { address: '127.0.0.22', ttl: 9 }]);
    expect(await resolveDnsSpec(r, { host: 'users.mesh.test', port: 8080 })).toEqual({
      endpoints: [
        { address: '127.0.0.21:8080', weight: 1, labels: {}, source: 'dns' },
        { address: '127.0.0.22:8080', weight: 1, labels: {}, source: 'dns' },
      ],
      ttlSeconds: 4,
    });
    r.srv.set('_x._tcp.mesh.test', [{ name: '127.0.0.5', port: 1, priority: 0, weight: 2 }]);
    expect((await resolveDnsSpec(r, { srv: '_x._tcp.mesh.test' })).endpoints).toEqual([{ address: '127.0.0.5:1', weight: 2, labels: {}, source: 'dns' }]);
  });
});

describe('DnsProvider', () => {
  function start(spec: { srv?: string; host?: string; port?: number; refresh?: string }) {
    const clock = new FakeClock();
    const resolver = new ScriptedResolver();
    const updates: DiscoveryUpdate[] = [];
    const p = new DnsProvider('users', spec, { log: silentLogger, clock, emptyGraceMs: 10_000, resolver });
    return { clock, resolver, updates, p, go: () => p.start((u) => updates.push(u)) };
  }

  it('re-resolves at the record TTL when it is shorter than refresh, and at refresh otherwise', async () => {
    const t = start({ host: 'users.mesh.test', port: 80, refresh: '10s' });
    t.resolver.a.set('users.mesh.test', [{ address: '127.0.0.1', ttl: 3 }]);
    t.go();
    await flush();
    expect(t.updates.at(-1)).toMatchObject({ stale: false, endpoints: [{ address: '127.0.0.1:80' }] });
    t.resolver.a.set('users.mesh.test', [{ address: '127.0.0.2', ttl: 60 }]);
    t.clock.advance(2_999);
    await flush();
    expect(t.updates.at(-1)!.endpoints[0]!.address).toBe('127.0.0.1:80');
    t.clock.advance(1);
    await flush();
    expect(t.updates.at(-1)!.endpoints[0]!.address).toBe('127.0.0.2:80');
    // TTL 60 s > refresh 10 s: the next look is at 10 s.
    const n = t.resolver.queries.length;
    t.clock.advance(9_999);
    await flush();
    expect(t.resolver.queries.length).toBe(n);
    t.clock.advance(1);
    await flush();
    expect(t.resolver.queries.length).toBeGreaterThan(n);
    await t.p.stop();
    expect(t.clock.pendingTimers).toBe(0);
  });

  it('after an empty answer looks again soon (1 s, doubling up to refresh), not only at refresh', async () => {
    const t = start({ host: 'users.mesh.test', port: 80, refresh: '30s' });
    t.go();
    await flush();
    expect(t.updates.at(-1)).toMatchObject({ endpoints: [], stale: false });
    const looks = () => t.resolver.queries.filter((q) => q.startsWith('A ')).length;
    expect(looks()).toBe(1);
    t.clock.advance(1_000);
    await flush();
    expect(looks()).toBe(2);
    t.clock.advance(1_999);
    await flush();
    expect(looks()).toBe(2);
    t.resolver.a.set('users.mesh.test', [{ address: '127.0.0.1', ttl: 5 }]);
    t.clock.advance(1);
    await flush();
    expect(looks()).toBe(3);
    expect(t.updates.at(-1)).toMatchObject({ endpoints: [{ address: '127.0.0.1:80' }] });
    await t.p.stop();
  });

  it('on a failing server keeps the last good set stale, retries sooner than refresh, recovers', async () => {
    const t = start({ srv: '_http._tcp.users.mesh.test', refresh: '30s' });
    t.resolver.srv.set('_http._tcp.users.mesh.test', [{ name: 'u1.mesh.test', port: 9101, priority: 0, weight: 1 }]);
    t.resolver.a.set('u1.mesh.test', [{ address: '127.0.0.11', ttl: 1 }]);
    t.go();
    await flush();
    t.resolver.fail = dns.TIMEOUT;
    t.clock.advance(1_000);
    await flush();
    expect(t.updates.at(-1)).toMatchObject({ stale: true, endpoints: [{ address: '127.0.0.11:9101', stale: true }] });
    expect(t.updates.at(-1)!.error).toContain(dns.TIMEOUT);
    t.resolver.fail = null;
    t.clock.advance(500); // first retry after ERROR_RETRY_MS
    await flush();
    expect(t.updates.at(-1)).toMatchObject({ stale: false, endpoints: [{ address: '127.0.0.11:9101' }] });
    await t.p.stop();
  });
});

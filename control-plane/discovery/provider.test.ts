import { describe, expect, it } from 'vitest';
import { parseMeshConfig } from '../../core/config/parse.js';
import { silentLogger } from '../../core/log.js';
import { createProvider } from './provider.js';

describe('createProvider', () => {
  it('makes one provider per kind configured, in a fixed order', async () => {
    const ps = createProvider('users', { dns: { srv: '_http._tcp.users' }, consul: {}, etcd: { endpoints: ['http://127.0.0.1:1'] } }, { log: silentLogger });
    expect(ps.map((p) => p.source)).toEqual(['dns', 'consul', 'etcd']);
    expect(createProvider('users', {}, { log: silentLogger })).toEqual([]);
  });

  it('an etcd block with no endpoints anywhere reports a stale error instead of throwing', async () => {
    const [p] = createProvider('users', { etcd: {} }, { log: silentLogger });
    const updates: Array<{ stale: boolean; error?: string }> = [];
    p!.start((u) => updates.push(u));
    expect(updates).toEqual([expect.objectContaining({ stale: true, error: expect.stringMatching(/no etcd endpoints/) })]);
    await p!.stop();
  });
});

describe('discovery config validation', () => {
  it('names every bad discovery field with its path and line', () => {
    const r = parseMeshConfig(
      [
        'services:',
        '  users:',
        '    discovery:',
        '      dns: { srv: _a._tcp.x, host: x, port: 80, servers: ["dns.local:53"] }',
        '      consul: { address: "consul.local", wait: 11m }',
        '      etcd: { prefix: /x, endpoints: ["127.0.0.1:2379"] }',
        '      emptyGrace: soon',
      ].join('\n'),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const byPath = Object.fromEntries(r.violations.map((v) => [v.path, v.message]));
    expect(Object.keys(byPath).sort()).toEqual(['services.users.discovery.emptyGrace']);
    // Schema errors stop before the cross-field checks; fix the duration and the rest is reported.
    const r2 = parseMeshConfig(
      [
        'services:',
        '  users:',
        '    discovery:',
        '      dns: { srv: _a._tcp.x, host: x, port: 80, servers: ["dns.local:53"] }',
        '      consul: { address: "consul.local", wait: 11m }',
        '      etcd: { prefix: /x, endpoints: ["127.0.0.1:2379"] }',
      ].join('\n'),
    );
    expect(r2.ok).toBe(false);
    if (r2.ok) return;
    expect(r2.violations.map((v) => `${v.path}@${v.line}`).sort()).toEqual([
      'services.users.discovery.consul.address@5',
      'services.users.discovery.consul.wait@5',
      'services.users.discovery.dns.servers[0]@4',
      'services.users.discovery.dns@4',
      'services.users.discovery.etcd.endpoints[0]@6',
      'services.users.discovery.etcd.prefix@6',
    ]);
  });

  it('accepts a good discovery block', () => {
    const r = parseMeshConfig('services:\n  users:\n    discovery:\n      dns: { srv: _http._tcp.users, servers: ["127.0.0.1:5353", "[::1]:53"], refresh: 5s }\n      consul: { address: "http://127.0.0.1:8500", wait: 1m }\n      emptyGrace: 0\n');
    expect(r.ok).toBe(true);
  });
});

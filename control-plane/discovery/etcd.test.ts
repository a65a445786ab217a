// The provider and registrar against a real etcd are in test/discovery-etcd-*.test.ts.
import { describe, expect, it } from 'vitest';
import { etcdClientOptions, instancesPrefix, parseEtcdInstance } from './etcd.js';

describe('parseEtcdInstance', () => {
  it('reads address, weight (default 1) and labels', () => {
    expect(parseEtcdInstance('{"address":"127.0.0.1:9101","weight":3,"labels":{"version":"v2"}}')).toEqual({
      ok: true,
      endpoint: { address: '127.0.0.1:9101', weight: 3, labels: { version: 'v2' }, source: 'etcd' },
    });
    expect(parseEtcdInstance('{"address":"[::1]:80"}')).toEqual({ ok: true, endpoint: { address: '[::1]:80', weight: 1, labels: {}, source: 'etcd' } });
  });

  it('says why a value is not an instance', () => {
    expect(parseEtcdInstance('nope')).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON/) });
    expect(parseEtcdInstance('{"address":"127.0.0.1"}')).toMatchObject({ ok: false, error: expect.stringMatching(/address: expected "host:port"/) });
    expect(parseEtcdInstance('{"address":"127.0.0.1:1","weight":0}')).toMatchObject({ ok: false, error: expect.stringMatching(/weight/) });
    expect(parseEtcdInstance('{"address":"127.0.0.1:1","extra":1}')).toMatchObject({ ok: false });
  });
});

describe('etcd client options', () => {
  it('bound unary calls by a deadline but not streams (watch, keepalive)', () => {
    const o = etcdClientOptions(['http://127.0.0.1:2379']);
    expect(o.dialTimeout).toBe(1000);
    const f = o.defaultCallOptions as (c: { isStream: boolean }) => { deadline?: number };
    expect(f({ isStream: true })).toEqual({});
    expect(f({ isStream: false }).deadline).toBeGreaterThan(Date.now());
    expect(instancesPrefix('users')).toBe('/meshlet/instances/users/');
  });
});

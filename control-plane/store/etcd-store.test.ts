// Against a real single-member etcd (test/harness/etcd.ts starts it); the 3-member cluster with
// replicas and failures is in test/ha-*.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMeshError } from '../../core/errors.js';
import type { MeshConfigInput } from '../../core/config/schema.js';
import { startEtcd, type EtcdCluster } from '../../test/harness/etcd.js';
import { waitFor } from '../../test/harness/wait.js';
import { EtcdStore } from './etcd-store.js';
import type { StoreEvent } from './store.js';

let etcd: EtcdCluster;
let n = 0;
/** A fresh key prefix per test, so tests share one etcd but not state. */
const open = (o: { historyLimit?: number } = {}) => EtcdStore.open({ endpoints: etcd.clientUrls, prefix: `/t${++n}/`, ...o });

const cfg = (port: number): MeshConfigInput => ({ services: { users: { endpoints: [{ address: `127.0.0.1:${port}` }] } } });
const write = (port: number) => ({ config: cfg(port), text: `users: ${port}`, author: 'test', note: `port ${port}` });

beforeAll(async () => {
  etcd = await startEtcd();
}, 30_000);
afterAll(async () => {
  await etcd?.stop();
});

describe('EtcdStore', () => {
  it('stores versions 1, 2, 3 with compare-and-set, and refuses a stale expected version with CONFLICT', async () => {
    const s = await open();
    expect(await s.current()).toBeUndefined();
    expect((await s.put(write(1), 0)).version).toBe(1);
    expect((await s.put(write(2))).version).toBe(2);
    const e = await s.put(write(3), 1).catch((x: unknown) => x);
    expect(isMeshError(e, 'CONFLICT')).toBe(true);
    expect((e as { details: unknown }).details).toEqual({ expectedVersion: 1, currentVersion: 2 });
    expect((await s.current())!.config).toEqual(cfg(2));
    await s.close();
  });

  it('two replicas writing concurrently without an expected version get distinct consecutive versions', async () => {
    const prefix = `/t${++n}/`;
    const a = await EtcdStore.open({ endpoints: etcd.clientUrls, prefix });
    const b = await EtcdStore.open({ endpoints: etcd.clientUrls, prefix });
    const got = await Promise.all([...Array(5).keys()].flatMap((i) => [a.put(write(100 + i)), b.put(write(200 + i))]));
    expect(got.map((v) => v.version).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect((await b.history()).map((v) => v.version)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    await Promise.all([a.close(), b.close()]);
  });

  it('keeps only historyLimit versions, newest first; rollback makes a new version with the old content', async () => {
    const s = await open({ historyLimit: 3 });
    for (let i = 1; i <= 5; i++) await s.put(write(i));
    expect((await s.history()).map((v) => v.version)).toEqual([5, 4, 3]);
    expect((await s.history(2)).map((v) => v.version)).toEqual([5, 4]);
    expect(await s.get(2)).toBeUndefined();
    const r = await s.rollback(3, { author: 'op', note: '' });
    expect(r).toMatchObject({ version: 6, rollbackOf: 3, config: cfg(3), note: 'rollback to version 3' });
    const e = await s.rollback(1, { author: 'op', note: '' }).catch((x: unknown) => x);
    expect(isMeshError(e, 'NOT_FOUND')).toBe(true);
    await s.close();
  });

  it('a write through one replica is an event on the other (config and instances; heartbeats are not)', async () => {
    const prefix = `/t${++n}/`;
    const a = await EtcdStore.open({ endpoints: etcd.clientUrls, prefix });
    const b = await EtcdStore.open({ endpoints: etcd.clientUrls, prefix });
    const events: StoreEvent[] = [];
    b.subscribe((e) => events.push(e));
    await a.put(write(1));
    await waitFor(() => events.some((e) => e.kind === 'config' && e.version === 1), { timeoutMs: 5000, what: 'config event on b' });
    await a.register({ id: 'users-1', service: 'users', address: '127.0.0.1:9101', labels: {}, adminAddress: '127.0.0.1:15000' }, 5000);
    await waitFor(() => events.some((e) => e.kind === 'instances'), { timeoutMs: 5000, what: 'instances event on b' });
    const before = events.length;
    await a.heartbeat('users-1');
    await a.put(write(2)); // a later event proves the heartbeat's event (if any) was already delivered
    await waitFor(() => events.some((e) => e.kind === 'config' && e.version === 2), { timeoutMs: 5000 });
    expect(events.slice(before)).toEqual([{ kind: 'config', version: 2 }]);
    await Promise.all([a.close(), b.close()]);
  });

  it('instances live under leases: they expire without heartbeats, heartbeats through any replica keep them', async () => {
    const prefix = `/t${++n}/`;
    const a = await EtcdStore.open({ endpoints: etcd.clientUrls, prefix });
    const b = await EtcdStore.open({ endpoints: etcd.clientUrls, prefix });
    const reg = { service: 'users', address: '127.0.0.1:9101', labels: { v: '1' }, adminAddress: '127.0.0.1:15000' };
    await a.register({ ...reg, id: 'kept' }, 1000);
    await a.register({ ...reg, id: 'dropped' }, 1000);
    expect((await b.instances()).map((i) => i.id)).toEqual(['dropped', 'kept']);
    // Heartbeat "kept" through the other replica until "dropped" has expired.
    await waitFor(
      async () => {
        await b.heartbeat('kept');
        return (await a.instances()).map((i) => i.id).join() === 'kept';
      },
      { timeoutMs: 8000, intervalMs: 200, what: '"dropped" to expire' },
    );
    const e = await b.heartbeat('dropped').catch((x: unknown) => x);
    expect(isMeshError(e, 'NOT_FOUND')).toBe(true);
    expect(await a.deregister('kept')).toBe(true);
    expect(await a.deregister('kept')).toBe(false);
    expect(await b.instances()).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses to open without endpoints or with a bad history limit', async () => {
    await expect(EtcdStore.open({ endpoints: [] })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(EtcdStore.open({ endpoints: etcd.clientUrls, historyLimit: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

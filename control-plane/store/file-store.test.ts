import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { isMeshError } from '../../core/errors.js';
import { FileStore } from './file-store.js';
import type { ConfigWrite, StoreEvent } from './store.js';

const write = (n: number): ConfigWrite => ({
  config: { services: { [`svc-${n}`]: { endpoints: [{ address: `127.0.0.1:${9000 + n}` }] } } },
  text: `services:\n  svc-${n}: {}\n`,
  author: 'alice',
  note: `change ${n}`,
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshlet-fs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileStore config versions', () => {
  it('numbers versions from 1 and reloads them after reopening', async () => {
    const s = await FileStore.open({ dir });
    expect(await s.current()).toBeUndefined();
    const v1 = await s.put(write(1));
    const v2 = await s.put(write(2), 1);
    expect([v1.version, v2.version]).toEqual([1, 2]);
    await s.close();
    const again = await FileStore.open({ dir });
    const cur = await again.current();
    expect(cur?.version).toBe(2);
    expect(cur?.config).toEqual(write(2).config);
    expect(cur?.text).toBe(write(2).text);
    expect((await again.history()).map((v) => v.version)).toEqual([2, 1]);
  });

  it('refuses a write based on a stale version with CONFLICT and keeps the current one', async () => {
    const s = await FileStore.open({ dir });
    await s.put(write(1), 0);
    const err = await s.put(write(2), 0).catch((e: unknown) => e);
    expect(isMeshError(err, 'CONFLICT')).toBe(true);
    expect((await s.current())?.version).toBe(1);
  });

  it('keeps only the last N versions on disk and in history', async () => {
    const s = await FileStore.open({ dir, historyLimit: 3 });
    for (let i = 1; i <= 5; i++) await s.put(write(i));
    expect((await s.history()).map((v) => v.version)).toEqual([5, 4, 3]);
    expect(await s.get(2)).toBeUndefined();
    const files = (await readdir(path.join(dir, 'config'))).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(['v0000000003.json', 'v0000000004.json', 'v0000000005.json']);
  });

  it('rolls back by writing the old content as a new version', async () => {
    const s = await FileStore.open({ dir });
    await s.put(write(1));
    await s.put(write(2));
    const v3 = await s.rollback(1, { author: 'bob', note: '' });
    expect(v3.version).toBe(3);
    expect(v3.rollbackOf).toBe(1);
    expect(v3.config).toEqual(write(1).config);
    expect(v3.author).toBe('bob');
    const missing = await s.rollback(99, { author: 'bob', note: '' }).catch((e: unknown) => e);
    expect(isMeshError(missing, 'NOT_FOUND')).toBe(true);
    expect((await s.current())?.version).toBe(3);
  });

  it('ignores unfinished temp files and sets aside a corrupt version on open', async () => {
    const s = await FileStore.open({ dir });
    await s.put(write(1));
    await s.put(write(2));
    await s.close();
    const cdir = path.join(dir, 'config');
    // What a kill -9 between write and rename leaves behind.
    await writeFile(path.join(cdir, '.tmp-v0000000003.json-123-abc'), '{"version":3,"conf');
    // A damaged file (not producible by the store itself): its checksum cannot match.
    await writeFile(path.join(cdir, 'v0000000002.json'), '{"version":2,"config":{},"sha256":"00"}');
    const again = await FileStore.open({ dir });
    expect((await again.current())?.version).toBe(1);
    const files = await readdir(cdir);
    expect(files.some((f) => f.startsWith('.tmp-'))).toBe(false);
    expect(files).toContain('v0000000002.json.corrupt');
    // The next write does not reuse a version number that a reader may have seen.
    expect((await again.put(write(3))).version).toBe(3);
  });

  it('tells subscribers about config writes', async () => {
    const s = await FileStore.open({ dir });
    const events: StoreEvent[] = [];
    s.subscribe((e) => events.push(e));
    await s.put(write(1));
    expect(events).toEqual([{ kind: 'config', version: 1 }]);
  });
});

describe('FileStore instance registry', () => {
  it('expires an instance that stops heartbeating after its TTL, and tells subscribers', async () => {
    const clock = new FakeClock();
    const s = await FileStore.open({ dir, clock });
    const events: StoreEvent[] = [];
    s.subscribe((e) => events.push(e));
    await s.register({ id: 'users-1', service: 'users', address: '127.0.0.1:9101', labels: { v: '1' }, adminAddress: '127.0.0.1:15000' }, 3000);
    clock.advance(2000);
    await s.heartbeat('users-1');
    clock.advance(2000);
    expect((await s.instances()).map((i) => i.id)).toEqual(['users-1']);
    clock.advance(1001);
    expect(await s.instances()).toEqual([]);
    expect(events).toEqual([{ kind: 'instances' }, { kind: 'instances' }]);
    const late = await s.heartbeat('users-1').catch((e: unknown) => e);
    expect(isMeshError(late, 'NOT_FOUND')).toBe(true);
  });

  it('deregisters at once', async () => {
    const s = await FileStore.open({ dir, clock: new FakeClock() });
    await s.register({ id: 'a', service: 'users', address: '127.0.0.1:1', labels: {}, adminAddress: '127.0.0.1:2' }, 10_000);
    expect(await s.deregister('a')).toBe(true);
    expect(await s.deregister('a')).toBe(false);
    expect(await s.instances()).toEqual([]);
  });
});

// Editing the standalone config file reloads it under load without failing a request; a bad edit
// is refused with a log line and the old config keeps serving; SIGHUP reloads too (here for a file
// reached through a symlink whose target lives elsewhere, which the directory watcher cannot see).
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, load, rawExchange, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let a: Upstream;
let b: Upstream;
let sidecar: SidecarHandle;

const configWith = (...ups: Upstream[]): object => ({ services: { users: { endpoints: ups.map((u) => ({ address: u.address })) } } });

beforeAll(async () => {
  a = await startUpstream({ id: 'a' });
  b = await startUpstream({ id: 'b' });
  sidecar = await startSidecar({ config: configWith(a) });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all([a.close(), b.close()]);
});

const version = async (): Promise<string> => (await sidecar.adminJson('/config')).body.version;

/** Sends requests until the answers come only from `ids` (the new config is in force). */
async function servedOnlyBy(...ids: string[]): Promise<void> {
  await waitFor(async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(String((await call(sidecar.outbound, { host: 'users', path: '/probe' })).headers['x-upstream-id']));
    return [...seen].every((id) => ids.includes(id)) && seen.size === ids.length;
  }, { timeoutMs: 30_000, what: `answers only from ${ids.join(', ')}` });
}

describe('config reload', () => {
  it('swaps endpoints under load without a failed request', async () => {
    let swapping = true;
    const failures: string[] = [];
    const traffic = load({ total: 50_000, concurrency: 8, timeoutMs: 100_000, until: () => !swapping }, async (i) => {
      // GETs and POSTs with bodies, so some requests are mid-body when the config changes.
      const r = i % 3 === 0
        ? await call(sidecar.outbound, { host: 'users', path: `/w/${i}`, method: 'POST', body: 'p'.repeat(2_000) })
        : await call(sidecar.outbound, { host: 'users', path: `/r/${i}` });
      if (r.status !== 200) failures.push(`${i}: ${r.status} ${r.text.slice(0, 200)}`);
      return r.status;
    });
    const plan: Upstream[][] = [[b], [a, b], [a], [b], [a]];
    for (const ups of plan) {
      const v = await version();
      sidecar.writeConfig(configWith(...ups));
      await waitFor(async () => (await version()) !== v, { timeoutMs: 30_000, what: 'config applied' });
      await servedOnlyBy(...ups.map((u) => u.id));
    }
    swapping = false;
    const { results, errors } = await traffic;
    console.log(`${results.length} requests across ${plan.length} reloads`);
    expect(errors).toEqual([]);
    expect(failures).toEqual([]);
    expect(results.length).toBeGreaterThan(100);
  }, 150_000);

  it('finishes a request whose body was still arriving when its endpoint left the config', async () => {
    await servedOnlyBy('a');
    const v = await version();
    // Headers and half the body now; the rest after the reload removed endpoint a.
    const slow = ['POST', 'PUT'].map((method) =>
      rawExchange(sidecar.outbound, [`${method} /slow-body HTTP/1.1\r\nHost: users\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345`, '67890'], { gapMs: 2_000, timeoutMs: 15_000 }),
    );
    sidecar.writeConfig(configWith(b));
    await waitFor(async () => (await version()) !== v, { timeoutMs: 30_000, what: 'config applied' });
    for (const r of await Promise.all(slow)) {
      expect(r.status).toBe(200);
      // It finishes on the snapshot it started with.
      expect(JSON.parse(r.body)).toMatchObject({ id: 'a', bodyBytes: 10 });
    }
    sidecar.writeConfig(configWith(a));
    await servedOnlyBy('a');
  });

  it('refuses a bad edit with every violation logged, and keeps serving the old config', async () => {
    const v = await version();
    const logsBefore = sidecar.proc.logs.length;
    sidecar.writeConfig('services:\n  users:\n    endpoints:\n      - address: nope\n    timeout: soon\n    colour: blue\n');
    const refusal = await sidecar.proc.waitForLog((l) => sidecar.proc.logs.indexOf(l) >= logsBefore && l.msg === 'config file refused; the previous config keeps serving');
    const violations = (refusal.violations as string[]).join('\n');
    expect(violations).toMatch(/mesh\.yaml:4:\d+: services\.users\.endpoints\[0\]\.address/);
    expect(violations).toMatch(/mesh\.yaml:5:\d+: services\.users\.timeout/);
    expect(violations).toMatch(/mesh\.yaml:6:\d+: services\.users\.colour: unknown field/);
    expect(await version()).toBe(v);
    for (let i = 0; i < 5; i++) {
      const r = await call(sidecar.outbound, { host: 'users', path: '/still' });
      expect(r.status).toBe(200);
      expect(r.headers['x-upstream-id']).toBe('a');
    }
    const ready = await sidecar.adminJson('/ready');
    expect(ready.status).toBe(200);
  });

  it('reloads a Kubernetes ConfigMap-style update (atomic swap of a ..data symlink)', async () => {
    // The layout a ConfigMap volume has: mesh.yaml -> ..data/mesh.yaml, ..data -> ..v1 (a directory).
    const dir = path.dirname(sidecar.configFile);
    for (const [v, up] of [['..v1', a], ['..v2', b]] as const) {
      mkdirSync(path.join(dir, v));
      writeFileSync(path.join(dir, v, 'mesh.yaml'), stringify(configWith(up)));
    }
    symlinkSync('..v1', path.join(dir, '..data'));
    symlinkSync('..data/mesh.yaml', `${sidecar.configFile}.link`);
    renameSync(`${sidecar.configFile}.link`, sidecar.configFile);
    await servedOnlyBy('a');
    const v = await version();
    symlinkSync('..v2', path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await waitFor(async () => (await version()) !== v, { timeoutMs: 30_000, what: 'config applied after the ..data swap' });
    await servedOnlyBy('b');
    // Back to a plain file for the next case.
    sidecar.writeConfig(configWith(a));
    await servedOnlyBy('a');
  });

  it('reloads on SIGHUP', async () => {
    // The file becomes a symlink to a target in another directory: edits to the target are invisible
    // to the watcher on the config's directory, so only SIGHUP can apply them.
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'meshlet-target-'));
    const target = path.join(elsewhere, 'real.yaml');
    writeFileSync(target, stringify(configWith(a)));
    const link = `${sidecar.configFile}.link`;
    symlinkSync(target, link);
    renameSync(link, sidecar.configFile);
    await servedOnlyBy('a');
    const v = await version();
    writeFileSync(target, stringify(configWith(b)));
    sidecar.proc.child.kill('SIGHUP');
    await waitFor(async () => (await version()) !== v, { timeoutMs: 10_000, what: 'config applied after SIGHUP' });
    await servedOnlyBy('b');
  });
});

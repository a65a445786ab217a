// Access log lines of a real sidecar: their content, sampling of successes while errors are always
// logged, minStatus filtering, settings changed by a config reload, and the --access-log FILE form.
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { spawnMeshlet, stopAll, type Proc } from './harness/process.js';
import { refusedAddress } from './harness/refused.js';
import { call } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let users: Upstream;
let dead: string;
let dir: string;

function meshConfig(accessLog: object): string {
  return stringify({
    services: { users: { endpoints: [{ address: users.address }] }, ghost: { endpoints: [{ address: dead }], retry: { attempts: 1 } } },
    routes: [{ name: 'users-api', match: { service: 'users', pathPrefix: '/api/' }, backends: [{ service: 'users' }] }],
    telemetry: { accessLog },
  });
}

async function sidecar(name: string, accessLog: object, flag: string): Promise<{ proc: Proc; outbound: string; configFile: string }> {
  const configFile = path.join(dir, `${name}.yaml`);
  writeFileSync(configFile, meshConfig(accessLog));
  const proc = spawnMeshlet(['sidecar', '--service', 'orders', '--config', configFile, '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', path.join(dir, name), '--access-log', flag]);
  // Start-up on a loaded 2-core machine running other suites can take a while.
  const outbound = String((await proc.waitForLog((l) => l.msg === 'listening' && l.listener === 'outbound', 60_000)).address);
  return { proc, outbound, configFile };
}

const accessLines = (p: Proc) => p.logs.filter((l) => l.msg === 'access');

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-access-'));
  users = await startUpstream({ id: 'users-1' });
  dead = await refusedAddress(); // not a released port, which another test may be given
});

afterAll(async () => {
  await stopAll();
  await users?.close();
});

describe('access log', () => {
  it('writes one JSON line per request with the request facts, the query cut off', async () => {
    const s = await sidecar('content', { sampleRatio: 1 }, 'stdout');
    const traceId = 'a'.repeat(32);
    const ok = await call(s.outbound, { host: 'users', path: '/api/users/7?token=secret', headers: { traceparent: `00-${traceId}-${'b'.repeat(16)}-01` } });
    expect(ok.status).toBe(200);
    expect((await call(s.outbound, { host: 'ghost', path: '/x', method: 'POST', body: 'hello' })).status).toBe(502);
    await waitFor(() => accessLines(s.proc).length === 2, { timeoutMs: 30_000, what: 'two access lines' });
    const [okLine, errLine] = accessLines(s.proc);
    expect(okLine).toMatchObject({ direction: 'outbound', method: 'GET', authority: 'users', path: '/api/users/7', status: 200, service: 'users', route: 'users-api', endpoint: users.address, attempts: 1, traceId });
    expect(okLine!.errorCode).toBeUndefined();
    expect(okLine!.bytesOut as number).toBeGreaterThanOrEqual(ok.text.length);
    expect(typeof okLine!.durationMs).toBe('number');
    expect(Date.parse(okLine!.time as string)).not.toBeNaN();
    expect(errLine).toMatchObject({ method: 'POST', authority: 'ghost', path: '/x', status: 502, errorCode: 'UPSTREAM_CONNECT_FAILURE', service: 'ghost', endpoint: dead });
    expect(typeof errLine!.bytesIn).toBe('number');
    expect(s.proc.output()).not.toContain('token=secret');
  });

  it('samples successes, always logs errors, filters by minStatus, and follows config reloads', async () => {
    const s = await sidecar('sampling', { sampleRatio: 0 }, 'stdout');
    const countOk = () => accessLines(s.proc).filter((l) => l.status === 200).length;
    const countErr = () => accessLines(s.proc).filter((l) => l.errorCode !== undefined).length;
    // Ratio 0: 20 successes and 3 errors give exactly the 3 error lines.
    for (let i = 0; i < 20; i++) expect((await call(s.outbound, { host: 'users', path: '/api/ok' })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await call(s.outbound, { host: 'ghost', path: '/' })).status).toBe(502);
    await waitFor(() => countErr() === 3, { timeoutMs: 30_000, what: 'three error lines' });
    expect(countOk()).toBe(0);

    // Ratio 0.5 after a reload: 200 successes log about half (mean 100, σ 7.1; 6σ bounds fail by chance ~1e-9).
    const applied = () => s.proc.logs.filter((l) => l.msg === 'config applied').length;
    const before = applied();
    const tmp = `${s.configFile}.tmp`;
    writeFileSync(tmp, meshConfig({ sampleRatio: 0.5 }));
    renameSync(tmp, s.configFile);
    await waitFor(() => applied() > before, { timeoutMs: 30_000, what: 'config reload' });
    for (let i = 0; i < 200; i++) await call(s.outbound, { host: 'users', path: '/api/half' });
    // An error is always logged; once its line is out, every earlier line is too (one writer, in order).
    await call(s.outbound, { host: 'ghost', path: '/barrier' });
    await waitFor(() => countErr() === 4, { timeoutMs: 30_000, what: 'barrier line' });
    const half = countOk();
    expect(half).toBeGreaterThan(57);
    expect(half).toBeLessThan(143);

    // minStatus 500: successes never, errors still.
    const before2 = applied();
    writeFileSync(tmp, meshConfig({ sampleRatio: 1, minStatus: 500 }));
    renameSync(tmp, s.configFile);
    await waitFor(() => applied() > before2, { timeoutMs: 30_000, what: 'config reload' });
    for (let i = 0; i < 10; i++) await call(s.outbound, { host: 'users', path: '/api/filtered' });
    await call(s.outbound, { host: 'ghost', path: '/barrier2' });
    await waitFor(() => countErr() === 5, { timeoutMs: 30_000, what: 'second barrier line' });
    expect(countOk()).toBe(half);
  }, 120_000);

  it('appends to --access-log FILE instead of stdout', async () => {
    const file = path.join(dir, 'access.log');
    const s = await sidecar('file', { sampleRatio: 1 }, file);
    for (let i = 0; i < 5; i++) await call(s.outbound, { host: 'users', path: `/api/f/${i}` });
    const lines = await waitFor(
      () => {
        const text = (() => {
          try {
            return readFileSync(file, 'utf8');
          } catch {
            return '';
          }
        })();
        const l = text.split('\n').filter(Boolean);
        return l.length === 5 ? l.map((x) => JSON.parse(x) as Record<string, unknown>) : undefined;
      },
      { timeoutMs: 30_000, what: 'five lines in the file' },
    );
    expect(lines.map((l) => l.path)).toEqual(['/api/f/0', '/api/f/1', '/api/f/2', '/api/f/3', '/api/f/4']);
    expect(accessLines(s.proc)).toEqual([]);
  });

  it('refuses an access log file it cannot open, before serving', async () => {
    const configFile = path.join(dir, 'bad.yaml');
    writeFileSync(configFile, meshConfig({}));
    const proc = spawnMeshlet(['sidecar', '--service', 'orders', '--config', configFile, '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', path.join(dir, 'bad'), '--access-log', path.join(dir, 'no/such/dir/access.log')]);
    expect(await proc.exited).not.toBe(0);
    expect(proc.output()).toMatch(/access log file .*no\/such\/dir\/access\.log.*ENOENT/);
    expect(proc.logs.find((l) => l.msg === 'listening')).toBeUndefined();
  });
});

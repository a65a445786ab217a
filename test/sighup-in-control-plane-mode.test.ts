// SIGHUP reloads a standalone sidecar's file (config-reload.test.ts); a sidecar fed by a control plane
// has nothing to re-read, and SIGHUP must neither kill it nor drain it: it is logged and ignored.
// The control plane here is an unreachable URL: the point is the process's signal handling.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnMeshlet, stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';

afterAll(stopAll);

describe('SIGHUP in control-plane mode', () => {
  it('is logged and ignored; SIGTERM still drains and exits 0', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-sighup-'));
    const proc = spawnMeshlet(['sidecar', '--service', 'orders', '--control-plane', 'http://127.0.0.1:1', '--outbound', '127.0.0.1:0', '--inbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', dir, '--access-log', 'off']);
    const admin = String((await proc.waitForLog((l) => l.msg === 'listening' && l.listener === 'admin', 90_000)).address);
    proc.child.kill('SIGHUP');
    await proc.waitForLog((l) => l.msg === 'SIGHUP ignored: the config comes from the control plane', 30_000);
    // Still up and answering.
    const live = await waitFor(async () => (await fetch(`http://${admin}/live`)).status, { timeoutMs: 10_000, what: '/live' });
    expect(live).toBe(200);
    expect(proc.child.exitCode).toBeNull();
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  }, 150_000);
});

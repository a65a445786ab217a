// SIGTERM drains gracefully: /ready turns 503 at once, the listeners stop accepting, a slow request
// in flight still completes, and the process exits 0. Past --drain-timeout it exits 0 anyway.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let up: Upstream;

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

// Each case starts its own sidecar (a process) and stops it.
vi.setConfig({ testTimeout: 150_000 });

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

const slow = (ms: number): Record<string, string> => ({ 'x-upstream-behaviour': JSON.stringify({ kind: 'delay', ms }) });

function refusesConnections(address: string): Promise<boolean> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = net.connect(Number(address.slice(colon + 1)), address.slice(0, colon));
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

describe('graceful drain', () => {
  it('turns unready, stops accepting, finishes the request in flight, exits 0', async () => {
    const sidecar = await startSidecar({ config: { services: { users: { endpoints: [{ address: up.address }] } } }, args: ['--app', up.address, '--drain-timeout', '20s'] });
    const outboundInFlight = call(sidecar.outbound, { host: 'users', path: '/slow-out', headers: slow(2_000) });
    const inboundInFlight = call(sidecar.inbound!, { host: 'users', path: '/slow-in', headers: slow(2_000) });
    await waitFor(async () => (await up.stats()).inflight === 2, { timeoutMs: 5_000, what: 'both slow requests at the upstream' });

    sidecar.proc.child.kill('SIGTERM');
    const ready = await waitFor(async () => {
      const r = await sidecar.adminJson('/ready');
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 5_000, what: '/ready 503' });
    expect(ready.body).toMatchObject({ ready: false, draining: true });
    await waitFor(() => refusesConnections(sidecar.outbound), { timeoutMs: 5_000, what: 'outbound listener closed' });
    expect(await refusesConnections(sidecar.inbound!)).toBe(true);

    const [out, inb] = await Promise.all([outboundInFlight, inboundInFlight]);
    expect(out.status).toBe(200);
    expect(out.json().path).toBe('/slow-out');
    expect(inb.status).toBe(200);
    expect(inb.json().path).toBe('/slow-in');
    expect(await sidecar.proc.exited).toBe(0);
    expect(sidecar.proc.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });

  it('waits for an inbound request alone (no outbound traffic in flight)', async () => {
    const sidecar = await startSidecar({ config: { services: { users: { endpoints: [{ address: up.address }] } } }, args: ['--app', up.address, '--drain-timeout', '20s'] });
    const inboundInFlight = call(sidecar.inbound!, { host: 'users', path: '/slow-in-only', headers: slow(1_500) });
    await waitFor(async () => (await up.stats()).inflight === 1, { timeoutMs: 5_000, what: 'slow inbound request at the upstream' });
    sidecar.proc.child.kill('SIGTERM');
    const r = await inboundInFlight;
    expect(r.status).toBe(200);
    expect(r.json().path).toBe('/slow-in-only');
    expect(await sidecar.proc.exited).toBe(0);
  });

  it('gives up on a request still running at --drain-timeout and exits 0', async () => {
    const sidecar = await startSidecar({ config: { services: { users: { endpoints: [{ address: up.address }] } } }, args: ['--drain-timeout', '500ms'] });
    const hanging = call(sidecar.outbound, { host: 'users', path: '/hang', headers: { 'x-upstream-behaviour': '{"kind":"hang"}' } }).then(
      (r) => `status ${r.status}`,
      (e: NodeJS.ErrnoException) => `error ${e.code}`,
    );
    await waitFor(async () => (await up.stats()).inflight === 1, { timeoutMs: 5_000, what: 'hanging request at the upstream' });
    sidecar.proc.child.kill('SIGTERM');
    expect(await sidecar.proc.exited).toBe(0);
    expect(sidecar.proc.logs.some((l) => l.msg === 'drain timeout: closing connections with requests in flight')).toBe(true);
    // The client is not left hanging: its connection is closed.
    expect(await hanging).toMatch(/^error /);
    await waitFor(async () => (await up.stats()).inflight === 0, { timeoutMs: 5_000, what: 'upstream request released' });
  });
});

// `meshlet ctl stat` against a real control plane and two real sidecars: a known mix of requests
// (30 successes through one sidecar, 10 successes and 10 HTTP 500s through the other) comes back as
// one row with 50 requests, 80% success, two sidecars, and latency from the upstream's known delay.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startControlPlane, startSidecar, tempDir, type ControlPlaneProc, type SidecarProc } from './control-plane-fixture.js';
import { spawnMeshlet, stopAll } from './harness/process.js';
import { call } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let users: Upstream;
let cp: ControlPlaneProc;
let a: SidecarProc;
let b: SidecarProc;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const t = await tempDir('ctl-stat');
  cleanup = t.cleanup;
  // Every answer takes ≥ 30 ms, so the latency quantiles have a known floor.
  users = await startUpstream({ id: 'users-1', behaviour: { kind: 'delay', ms: 30 } });
  const config = path.join(t.dir, 'mesh.yaml');
  await writeFile(
    config,
    stringify({
      // No retries and no ejection: the 500s must reach the figures as sent, not trip a breaker into 503s.
      services: { users: { endpoints: [{ address: users.address }], retry: { attempts: 1 }, circuitBreaker: { consecutiveFailures: 1000 } } },
      routes: [{ name: 'users-api', match: { service: 'users', pathPrefix: '/api/' }, backends: [{ service: 'users' }] }],
    }),
  );
  cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp'), config });
  a = await startSidecar({ controlPlane: cp.url, service: 'orders', dataDir: path.join(t.dir, 'a'), id: 'orders-a' });
  b = await startSidecar({ controlPlane: cp.url, service: 'orders', dataDir: path.join(t.dir, 'b'), id: 'orders-b' });
  // Both sidecars registered (with their admin addresses) and running the config.
  await waitFor(
    async () => {
      const r = (await (await fetch(`${cp.url}/v1/sidecars`)).json()) as { sidecars: Array<{ id: string; adminAddress: string | null; status: string }> };
      return r.sidecars.filter((s) => s.adminAddress && s.status === 'synced').length === 2;
    },
    { timeoutMs: 45_000, what: 'two synced sidecars' },
  );
});

afterAll(async () => {
  await stopAll();
  await users?.close();
  await cleanup?.();
});

describe('meshlet ctl stat', () => {
  it('reports the request mix sent between its two samples, aggregated across sidecars', async () => {
    const stat = spawnMeshlet(['ctl', 'stat', 'users', '--control-plane', cp.url, '--interval', '10s', '-o', 'json']);
    // The first sample is taken: everything sent from now on falls inside the interval (10 s: room for
    // the burst below even on a loaded machine).
    await stat.waitForLine(/^sampled 2 sidecars/, 45_000);
    const fail500 = { 'x-upstream-behaviour': JSON.stringify({ kind: 'status', status: 500 }) };
    const sends: Array<Promise<number>> = [];
    for (let i = 0; i < 30; i++) sends.push(call(a.outbound, { host: 'users', path: `/api/u/${i}` }).then((r) => r.status));
    for (let i = 0; i < 10; i++) sends.push(call(b.outbound, { host: 'users', path: `/api/u/${i}` }).then((r) => r.status));
    for (let i = 0; i < 10; i++) sends.push(call(b.outbound, { host: 'users', path: `/api/u/${i}`, headers: fail500 }).then((r) => r.status));
    const statuses = await Promise.all(sends);
    expect(statuses.filter((s) => s === 200), `statuses: ${statuses.join(' ')}`).toHaveLength(40);
    expect(statuses.filter((s) => s === 500), `statuses: ${statuses.join(' ')}`).toHaveLength(10);

    expect(await stat.exited, stat.output()).toBe(0);
    const report = JSON.parse(stat.lines.filter((l) => !l.startsWith('sampled')).join('\n')) as {
      interval: number;
      rows: Array<{ direction: string; service: string; route: string; requests: number; rps: number; successRate: number; p50: number; p95: number; p99: number; sidecars: number }>;
      unreachable: unknown[];
    };
    expect(report.unreachable).toEqual([]);
    expect(report.rows, stat.output()).toHaveLength(1);
    const row = report.rows[0]!;
    expect(row).toMatchObject({ direction: 'outbound', service: 'users', route: 'users-api', requests: 50, successRate: 0.8, sidecars: 2 });
    // RPS is per sidecar over its own two read times, which differ a little from the report's
    // overall interval (sidecars are read one after another): consistent within a margin.
    expect(row.rps * report.interval).toBeGreaterThan(50 * 0.85);
    expect(row.rps * report.interval).toBeLessThan(50 * 1.15);
    // ≥ 30 ms each: the median sits at or above the 25 ms bucket; quantiles are ordered.
    expect(row.p50).toBeGreaterThanOrEqual(0.025);
    expect(row.p95).toBeGreaterThanOrEqual(row.p50);
    expect(row.p99).toBeGreaterThanOrEqual(row.p95);
  });

  it('prints a table and refreshes with -w, as plain lines when stdout is not a terminal', async () => {
    const stat = spawnMeshlet(['ctl', 'stat', '--control-plane', cp.url, '--interval', '300ms', '-w', '--count', '2']);
    expect(await stat.exited).toBe(0);
    const headers = stat.lines.filter((l) => l.startsWith('SERVICE'));
    expect(headers).toHaveLength(2);
    expect(headers[0]).toMatch(/SERVICE\s+ROUTE\s+DIRECTION\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99\s+SIDECARS/);
    expect(stat.output()).not.toContain('\x1b[2J');
  });

  it('refuses a bad interval with a usage error and exit code 2', async () => {
    const stat = spawnMeshlet(['ctl', 'stat', '--control-plane', cp.url, '--interval', 'soon']);
    expect(await stat.exited).toBe(2);
    expect(stat.output()).toContain('--interval');
  });
});

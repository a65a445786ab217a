// The real Dockerfile, built with podman on a locally made base image (no registry is reachable
// here; scripts/container-base.sh makes localhost/meshlet-base:node20 with debootstrap and this
// machine's Node), run as a sidecar beside a sample app on the host network (loopback only).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, containerLogs, ensureBaseImage, freePort, imageSizeBytes, podman, podmanStatus } from './harness/container.js';
import { waitFor } from './harness/wait.js';

const IMAGE = 'localhost/meshlet:e2e';
const NAME = `meshlet-e2e-${process.pid}`;
const APP_NAME = `meshlet-e2e-app-${process.pid}`;
const BESIDE_NAME = `meshlet-e2e-beside-${process.pid}`;
const CP_NAME = `meshlet-e2e-cp-${process.pid}`;
const status = await podmanStatus();
if (!status.ok) {
  console.warn(`\n${'!'.repeat(80)}\n!! SKIPPING the container test: podman cannot run here: ${status.why}\n${'!'.repeat(80)}\n`);
}

describe.skipIf(!status.ok)('the Docker image as a sidecar (podman)', () => {
  let app: http.Server;
  let appAddress = '';
  const appSeen: Array<{ url?: string; host?: string; xff?: string }> = [];
  let dir = '';
  let adminPort = 0;

  beforeAll(async () => {
    await ensureBaseImage();
    await buildImage(IMAGE);
    console.log(`image ${IMAGE}: ${(await imageSizeBytes(IMAGE) / 1e6).toFixed(0)} MB`);

    app = http.createServer((req, res) => {
      appSeen.push({ url: req.url, host: req.headers.host, xff: req.headers['x-forwarded-for'] as string | undefined });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ app: 'sample', path: req.url }));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    appAddress = `127.0.0.1:${(app.address() as AddressInfo).port}`;

    // Mounted read-only into the container, which runs as uid 10001: world-readable.
    dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-docker-'));
    chmodSync(dir, 0o755);
    writeFileSync(path.join(dir, 'mesh.yaml'), `services:\n  sample:\n    endpoints:\n      - address: ${appAddress}\n    retry: { attempts: 2 }\n`, { mode: 0o644 });
    adminPort = await freePort();
  }, 900_000);

  afterAll(async () => {
    // One at a time: the app container cannot go while the sidecar in its namespace remains.
    for (const name of [NAME, BESIDE_NAME, APP_NAME, CP_NAME]) await podman(['rm', '-f', '-t', '0', name]);
    app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries no dev dependencies or build tools, and runs as a non-root user', { timeout: 120_000 }, async () => {
    const r = await podman(['run', '--rm', '--network', 'host', '--entrypoint', 'sh', IMAGE, '-c',
      'id -u; ls /app/node_modules; for t in npm npx yarn gcc make python3 tsc; do command -v $t || true; done']);
    expect(r.code, r.stderr).toBe(0);
    const [uid, ...rest] = r.stdout.trim().split('\n');
    expect(uid).toBe('10001');
    const listing = rest.join('\n');
    for (const dev of ['typescript', 'vitest', 'tsx', 'playwright-core', 'autocannon', 'fastify', 'dockerfilelint']) expect(listing.split('\n')).not.toContain(dev);
    expect(listing.split('\n')).toContain('undici');
    expect(listing).not.toMatch(/^\/.*\/(npm|npx|yarn|gcc|make|python3|tsc)$/m);
  });

  it('starts as a sidecar from MESHLET_* variables and a mounted YAML file, turns healthy, proxies both ways, and stops cleanly on SIGTERM', { timeout: 240_000 }, async () => {
    const started = await podman([
      'run', '-d', '--name', NAME, '--network', 'host',
      '-v', `${dir}:/etc/meshlet:ro`,
      '-e', 'MESHLET_SERVICE=sample',
      '-e', `MESHLET_APP=${appAddress}`,
      '-e', 'MESHLET_CONFIG=/etc/meshlet/mesh.yaml',
      '-e', 'MESHLET_INBOUND=127.0.0.1:0',
      '-e', 'MESHLET_OUTBOUND=127.0.0.1:0',
      '-e', `MESHLET_ADMIN=127.0.0.1:${adminPort}`,
      '-e', `HEALTHCHECK_URL=http://127.0.0.1:${adminPort}/ready`,
      IMAGE,
    ]);
    expect(started.code, started.stderr).toBe(0);

    const listening = await waitFor(
      async () => {
        const logs = await containerLogs(NAME);
        const addr = (l: string) => logs.find((x) => x.msg === 'listening' && x.listener === l)?.address as string | undefined;
        const inbound = addr('inbound');
        const outbound = addr('outbound');
        return inbound && outbound ? { inbound, outbound } : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'the sidecar in the container to log its listeners' },
    );

    // The image's own HEALTHCHECK, run by podman (exit 0 = healthy).
    await waitFor(async () => (await podman(['healthcheck', 'run', NAME])).code === 0, { timeoutMs: 90_000, intervalMs: 250, what: 'the container health check to pass' });
    const health = await podman(['inspect', '--format', '{{.State.Health.Status}}', NAME]);
    expect(health.stdout.trim()).toBe('healthy');

    // Inbound: a peer's call reaches the app.
    const inbound = await fetch(`http://${listening.inbound}/orders/1`);
    expect(inbound.status).toBe(200);
    expect(await inbound.json()).toEqual({ app: 'sample', path: '/orders/1' });
    // Outbound: the app's call to service "sample" by Host header goes to its endpoint.
    const before = appSeen.length;
    const outbound = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const [host, port] = listening.outbound.split(':');
      http
        .get({ host, port: Number(port), path: '/users/7', headers: { host: 'sample' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
    expect(outbound.status).toBe(200);
    expect(JSON.parse(outbound.body)).toEqual({ app: 'sample', path: '/users/7' });
    expect(appSeen.length).toBe(before + 1);
    expect(appSeen.at(-1)!.xff).toBeDefined();

    // Node is PID 1 and must handle SIGTERM itself: a clean exit 0, not a SIGKILL (137) after the timeout.
    const stopped = await podman(['stop', '-t', '20', NAME], 60_000);
    expect(stopped.code, stopped.stderr).toBe(0);
    const exit = await podman(['inspect', '--format', '{{.State.ExitCode}}', NAME]);
    expect(exit.stdout.trim()).toBe('0');
  });

  it('joins an app container\'s network namespace, as the README recipe does (--network container:APP)', { timeout: 240_000 }, async () => {
    // The app is a container too: the demo users service from the same image.
    const appPort = await freePort();
    const app = await podman(['run', '-d', '--name', APP_NAME, '--network', 'host', '--entrypoint', 'node', IMAGE,
      '/app/dist/demo-services/users.js', '--listen', `127.0.0.1:${appPort}`, '--instance', 'users-in-a-container']);
    expect(app.code, app.stderr).toBe(0);
    const beside = await podman([
      'run', '-d', '--name', BESIDE_NAME, '--network', `container:${APP_NAME}`,
      '-v', `${dir}:/etc/meshlet:ro`,
      '-e', 'MESHLET_SERVICE=users', '-e', `MESHLET_APP=127.0.0.1:${appPort}`, '-e', 'MESHLET_CONFIG=/etc/meshlet/mesh.yaml',
      '-e', 'MESHLET_INBOUND=127.0.0.1:0', '-e', 'MESHLET_OUTBOUND=127.0.0.1:0', '-e', 'MESHLET_ADMIN=127.0.0.1:0',
      IMAGE,
    ]);
    expect(beside.code, beside.stderr).toBe(0);
    const inbound = await waitFor(
      async () => (await containerLogs(BESIDE_NAME)).find((x) => x.msg === 'listening' && x.listener === 'inbound')?.address as string | undefined,
      { timeoutMs: 90_000, intervalMs: 250, what: 'the sidecar beside the app container to listen' },
    );
    const r = await waitFor(async () => {
      const res = await fetch(`http://${inbound}/users/42`);
      return res.status === 200 ? ((await res.json()) as { id: string; servedBy: { instance: string } }) : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'GetUser through the sidecar' });
    expect(r).toMatchObject({ id: '42', servedBy: { instance: 'users-in-a-container' } });
  });

  it('serves the control plane too: health-checked on /v1/health, config seeded from a mounted file, state in a volume', { timeout: 240_000 }, async () => {
    const port = await freePort();
    const volume = `meshlet-e2e-cp-data-${process.pid}`;
    try {
      const cp = await podman([
        'run', '-d', '--name', CP_NAME, '--network', 'host',
        '-v', `${volume}:/var/lib/meshlet`, '-v', `${dir}:/etc/meshlet:ro`,
        '-e', `MESHLET_LISTEN=127.0.0.1:${port}`, '-e', 'MESHLET_CONFIG=/etc/meshlet/mesh.yaml',
        '-e', `HEALTHCHECK_URL=http://127.0.0.1:${port}/v1/health`,
        IMAGE, 'control-plane',
      ]);
      expect(cp.code, cp.stderr).toBe(0);
      await waitFor(async () => (await podman(['healthcheck', 'run', CP_NAME])).code === 0, { timeoutMs: 90_000, intervalMs: 250, what: 'the control plane container to be healthy' });
      const config = await fetch(`http://127.0.0.1:${port}/v1/config`, { headers: { accept: 'application/json' } });
      expect(config.status).toBe(200);
      expect(JSON.stringify(await config.json())).toContain(appAddress);
      // The file store wrote into the volume, as the non-root user.
      const ls = await podman(['run', '--rm', '-v', `${volume}:/data`, '--entrypoint', 'sh', IMAGE, '-c', 'find /data -type f | head -n 5; stat -c %u /data']);
      expect(ls.stdout).toMatch(/\/data\/\.meshlet\/control-plane\//);
      expect(ls.stdout.trim().split('\n').at(-1)).toBe('10001');
      expect((await podman(['stop', '-t', '20', CP_NAME], 60_000)).code).toBe(0);
      expect((await podman(['inspect', '--format', '{{.State.ExitCode}}', CP_NAME])).stdout.trim()).toBe('0');
    } finally {
      await podman(['rm', '-f', '-t', '0', CP_NAME]);
      await podman(['volume', 'rm', '-f', volume]);
    }
  });

  it('runs `meshlet demo` inside the image', { timeout: 300_000 }, async () => {
    const r = await podman(['run', '--rm', '--network', 'host', IMAGE, 'demo', '--quiet', '-o', 'json', '--duration', '12s'], 280_000);
    const start = r.stdout.indexOf('{');
    expect(start, `${r.stdout}\n${r.stderr}`).toBeGreaterThanOrEqual(0);
    const summary = JSON.parse(r.stdout.slice(start)) as { requests: number; processes: { started: number; leftRunning: number } };
    expect(summary.requests).toBeGreaterThan(0);
    expect(summary.processes).toMatchObject({ started: 9, leftRunning: 0 });
    // The figures themselves are checked by test/demo.test.ts; a container on a busy machine may run slower.
    expect(r.code === 0 || r.code === 1, r.stderr).toBe(true);
  });
});

// The client against a real control plane (in-process, real HTTP on loopback, real file store).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.js';
import type { Snapshot } from '../core/snapshot.js';
import { ControlPlane } from '../control-plane/control-plane.js';
import { FileStore } from '../control-plane/store/file-store.js';
import { waitFor } from '../test/harness/wait.js';
import { ControlPlaneClient, SseDecoder, type ControlPlaneClientOptions } from './control-plane-client.js';

describe('SseDecoder', () => {
  it('frames events split across chunks, with CRLF, comments and multi-line data', () => {
    const d = new SseDecoder();
    expect(d.push(': hello\n\nid: a1\nevent: snap')).toEqual([]);
    expect(d.push('shot\r\ndata: {"x":\ndata: 1}\r\n\r\ndata: plain\n')).toEqual([{ id: 'a1', event: 'snapshot', data: '{"x":\n1}' }]);
    expect(d.push('\n')).toEqual([{ id: 'a1', event: 'message', data: 'plain' }]);
  });
});

let dir: string;
let cp: ControlPlane;
let base: string;
const clients: ControlPlaneClient[] = [];

async function startCp(opts: { token?: string; port?: number } = {}): Promise<void> {
  const store = await FileStore.open({ dir: path.join(dir, 'cp') });
  cp = new ControlPlane({ store, log: silentLogger, token: opts.token, instanceTtlMs: 3000 });
  const addr = await cp.listen('127.0.0.1', opts.port ?? 0);
  base = `http://127.0.0.1:${addr.port}`;
}

async function putConfig(yaml: string, token?: string): Promise<Response> {
  return fetch(`${base}/v1/config`, { method: 'PUT', body: yaml, headers: token ? { authorization: `Bearer ${token}` } : {} });
}

function client(apply: ControlPlaneClientOptions['apply'], extra: Partial<ControlPlaneClientOptions> = {}): ControlPlaneClient {
  const c = new ControlPlaneClient({
    urls: [base],
    sidecarId: 'users-1',
    service: 'users',
    instance: { address: '127.0.0.1:9201', labels: { version: 'v1' } },
    adminAddress: '127.0.0.1:9301',
    dataDir: path.join(dir, 'sidecar'),
    apply,
    log: silentLogger,
    backoff: { baseMs: 20, maxMs: 100 },
    ...extra,
  });
  clients.push(c);
  return c;
}

const sidecarState = async (): Promise<Record<string, unknown> | undefined> => {
  const body = (await (await fetch(`${base}/v1/sidecars`)).json()) as { sidecars: Array<Record<string, unknown>> };
  return body.sidecars.find((s) => s.id === 'users-1');
};

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshlet-cpc-'));
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await cp?.close();
  await rm(dir, { recursive: true, force: true });
});

const CONFIG = 'services:\n  users:\n    endpoints:\n      - { address: 127.0.0.1:9101 }\n';

describe('ControlPlaneClient', () => {
  it('registers, applies the pushed snapshot, ACKs it and persists it', async () => {
    await startCp();
    await putConfig(CONFIG);
    const applied: Snapshot[] = [];
    const c = client(async (s) => {
      applied.push(s);
      return { ok: true };
    });
    c.start();
    await waitFor(async () => (await sidecarState())?.status === 'synced', { timeoutMs: 5000 });
    expect(c.connected).toBe(true);
    expect(applied).toHaveLength(1);
    // Its own registration appears among the users endpoints of the snapshot it got.
    expect(applied[0]!.endpoints.users?.map((e) => e.address)).toEqual(['127.0.0.1:9201']);
    const saved = JSON.parse(await readFile(path.join(dir, 'sidecar', 'snapshot.json'), 'utf8')) as Snapshot;
    expect(saved.hash).toBe(applied[0]!.hash);
    const again = client(async () => ({ ok: true }), { sidecarId: 'other' });
    expect((await again.loadSaved())?.hash).toBe(applied[0]!.hash);
  });

  it('NACKs with the reason when the sidecar refuses, and shows refused until a config it can apply', async () => {
    await startCp();
    await putConfig(CONFIG);
    const c = client(async (s) => (s.config.services.users?.timeout === '1s' ? { ok: false, reason: 'timeout too short for this sidecar' } : { ok: true }));
    c.start();
    await waitFor(async () => (await sidecarState())?.status === 'synced', { timeoutMs: 5000 });
    await putConfig(`${CONFIG}    timeout: 1s\n`);
    const refused = await waitFor(async () => {
      const s = await sidecarState();
      return s?.status === 'refused' ? s : undefined;
    }, { timeoutMs: 5000 });
    expect((refused.lastRefusal as { reason: string }).reason).toBe('timeout too short for this sidecar');
    expect((refused.applied as { version: string }).version).toBe('1');
    await putConfig(`${CONFIG}    timeout: 2s\n`);
    await waitFor(async () => (await sidecarState())?.status === 'synced', { timeoutMs: 5000 });
  });

  it('is not sent the snapshot again when it reconnects with nothing changed', async () => {
    await startCp();
    await putConfig(CONFIG);
    let applies = 0;
    const c = client(async () => {
      applies++;
      return { ok: true };
    });
    c.start();
    await waitFor(async () => (await sidecarState())?.status === 'synced', { timeoutMs: 5000 });
    const port = Number(new URL(base).port);
    await cp.close();
    await waitFor(() => !c.connected, { timeoutMs: 5000 });
    await startCp({ port });
    await waitFor(async () => c.connected && (await sidecarState())?.status === 'synced', { timeoutMs: 10_000 });
    const state = await sidecarState();
    expect(state?.sent).toBeNull();
    expect(applies).toBe(1);
  });

  it('applies only the newest of the snapshots that arrived while an apply was running', async () => {
    await startCp();
    await putConfig(CONFIG);
    const applied: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const received: string[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void (JSON.parse(line).msg === 'snapshot received' && received.push(JSON.parse(line).hash as string)) });
    const c = client(
      async (s) => {
        applied.push(s.version);
        if (s.version === '1') await gate;
        return { ok: true };
      },
      { log },
    );
    c.start();
    await waitFor(() => applied.length === 1, { timeoutMs: 5000 });
    // Two more versions arrive while version 1 is still being applied.
    await putConfig(`${CONFIG}    timeout: 3s\n`);
    await cp.pusher.settled();
    await putConfig(`${CONFIG}    timeout: 4s\n`);
    await cp.pusher.settled();
    const v3 = cp.pusher.current!.hash;
    await waitFor(() => received.includes(v3), { timeoutMs: 5000, what: 'version 3 received' });
    release();
    await waitFor(async () => (await sidecarState())?.status === 'synced', { timeoutMs: 5000 });
    expect(applied).toEqual(['1', '3']);
  });

  it('fails over to the next URL when the first control plane is down', async () => {
    await startCp();
    await putConfig(CONFIG);
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const c = client(async () => ({ ok: true }), { urls: ['http://127.0.0.1:1', base] });
    c.start();
    await waitFor(async () => (await sidecarState())?.status === 'synced', { timeoutMs: 5000 });
    expect(c.connected).toBe(true);
  });

  it('deregisters so the instance leaves the endpoints at once', async () => {
    await startCp();
    await putConfig(CONFIG);
    const c = client(async () => ({ ok: true }));
    c.start();
    await waitFor(async () => (await sidecarState())?.registered === true, { timeoutMs: 5000 });
    await c.deregister();
    const services = (await (await fetch(`${base}/v1/services`)).json()) as { services: Array<{ name: string; endpoints: Array<{ source: string }> }> };
    expect(services.services.find((s) => s.name === 'users')?.endpoints.map((e) => e.source)).toEqual(['static']);
  });

  it('cannot register with a wrong token', async () => {
    await startCp({ token: 's3cret' });
    await putConfig(CONFIG, 's3cret');
    const c = client(async () => ({ ok: true }), { token: 'wrong' });
    c.start();
    // A client with the right token registers fine on the same control plane.
    const ok = client(async () => ({ ok: true }), { token: 's3cret', sidecarId: 'users-2' });
    ok.start();
    await waitFor(() => ok.connected, { timeoutMs: 5000 });
    expect(await sidecarState()).toBeUndefined();
    expect(c.connected).toBe(false);
  });
});

// The demo services' fault knobs, against the real processes (dist/demo-services/*.js).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnProcess, stopAll, ROOT, type Proc } from './harness/process.js';
import { waitFor } from './harness/wait.js';

const USERS = `${ROOT}/dist/demo-services/users.js`;
const ORDERS = `${ROOT}/dist/demo-services/orders.js`;

async function start(script: string, args: string[], env: Record<string, string> = {}): Promise<{ proc: Proc; base: string }> {
  const proc = spawnProcess(process.execPath, [script, '--listen', '127.0.0.1:0', ...args], { env });
  // Generous: Node start-up on a busy 2-core machine can take many seconds.
  const line = await proc.waitForLog((l) => l.msg === 'listening', 45_000);
  return { proc, base: `http://${String(line.address)}` };
}

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

afterAll(stopAll);

describe('users demo service', () => {
  it('answers GetUser with its instance and version', async () => {
    const { base } = await start(USERS, ['--instance', 'users-7', '--version', 'v2']);
    const r = await json(`${base}/users/42`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: '42', servedBy: { instance: 'users-7', version: 'v2' } });
    expect(typeof r.body.name).toBe('string');
    expect((await json(`${base}/users/a%20b`)).status).toBe(404);
  });

  it('errorRate set at run time turns answers into 503 and back', async () => {
    const { base } = await start(USERS, []);
    expect((await json(`${base}/fault`, post({ errorRate: 1 }))).body).toMatchObject({ errorRate: 1 });
    const failed = await json(`${base}/users/1`);
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('INJECTED_FAULT');
    await json(`${base}/fault`, post({ errorRate: 0 }));
    expect((await json(`${base}/users/1`)).status).toBe(200);
    expect((await json(`${base}/stats`)).body).toMatchObject({ requests: 2, injectedErrors: 1 });
  });

  it('takes its knobs from env twins at start', async () => {
    const { base } = await start(USERS, [], { DEMO_ERROR_RATE: '1', DEMO_INSTANCE: 'users-env' });
    const r = await json(`${base}/users/1`);
    expect(r.status).toBe(503);
    expect(r.headers.get('x-demo-instance')).toBe('users-env');
  });

  it('refuses bad fault settings whole and keeps the old ones', async () => {
    const { base } = await start(USERS, ['--error-rate', '0.25']);
    const bad = await json(`${base}/fault`, post({ errorRate: 3, latencyMs: 10 }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.violations.map((v: { path: string }) => v.path)).toEqual(['errorRate']);
    const notJson = await fetch(`${base}/fault`, { method: 'POST', body: '{nope' });
    expect(notJson.status).toBe(400);
    expect((await json(`${base}/fault`)).body).toEqual({ errorRate: 0.25, latencyMs: 0, hang: false });
  });

  it('hang and latency hold the answer back until switched off', async () => {
    const { base } = await start(USERS, []);
    await json(`${base}/fault`, post({ hang: true }));
    const hung = new AbortController();
    let hungSettled = false;
    const hangReq = fetch(`${base}/users/1`, { signal: hung.signal }).finally(() => (hungSettled = true));
    await waitFor(async () => (await json(`${base}/stats`)).body.hung === 1, { what: 'the request to hang' });
    expect(hungSettled).toBe(false);

    await json(`${base}/fault`, post({ hang: false, latencyMs: 600_000 }));
    const slow = new AbortController();
    let slowSettled = false;
    const slowReq = fetch(`${base}/users/2`, { signal: slow.signal }).finally(() => (slowSettled = true));
    await waitFor(async () => (await json(`${base}/stats`)).body.requests === 2, { what: 'the delayed request to arrive' });
    expect(slowSettled).toBe(false);

    await json(`${base}/fault`, post({ latencyMs: 0 }));
    expect((await json(`${base}/users/3`)).status).toBe(200);
    hung.abort();
    slow.abort();
    await expect(hangReq).rejects.toThrow();
    await expect(slowReq).rejects.toThrow();
  });

  it('crashes on request, after answering', async () => {
    const { proc, base } = await start(USERS, []);
    const r = await json(`${base}/fault`, post({ crash: true }));
    expect(r.body.crash).toBe(true);
    expect(await proc.exited).toBe(70);
  });

  it('crashes after --crash-after requests', async () => {
    const { proc, base } = await start(USERS, ['--crash-after', '2']);
    expect((await json(`${base}/users/1`)).status).toBe(200);
    expect((await json(`${base}/users/2`)).status).toBe(200);
    expect(await proc.exited).toBe(70);
  });

  it('refuses a bad flag at start, naming the flag and its env twin', async () => {
    const proc = spawnProcess(process.execPath, [USERS, '--latency', 'soon']);
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toMatch(/--latency \(DEMO_LATENCY\) "soon"/);
  });

  it('stops on SIGTERM with exit 0', async () => {
    const { proc } = await start(USERS, []);
    expect(await proc.stop('SIGTERM')).toBe(0);
  });
});

describe('orders demo service', () => {
  // A recording stand-in for the sidecar's outbound listener: this file checks what orders sends
  // to its sidecar; the real sidecar path is covered by test/demo.test.ts.
  async function fakeOutbound(answer: (req: http.IncomingMessage) => { status: number; headers?: Record<string, string>; body: unknown }) {
    const seen: Array<{ host: string | undefined; url: string | undefined; traceparent: string | undefined }> = [];
    const server = http.createServer((req, res) => {
      seen.push({ host: req.headers.host, url: req.url, traceparent: req.headers.traceparent as string | undefined });
      const a = answer(req);
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(JSON.stringify(a.body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, seen, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  it('fetches the user through the outbound listener by Host, passing traceparent on', async () => {
    const out = await fakeOutbound(() => ({ status: 200, body: { id: '8', name: 'Ken', servedBy: { instance: 'users-2', version: 'v1' } } }));
    try {
      const { base } = await start(ORDERS, ['--outbound', out.address]);
      const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const r = await json(`${base}/orders/7`, { headers: { traceparent: tp } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ id: 7, user: { id: '8', servedBy: { instance: 'users-2' } } });
      expect(out.seen).toEqual([{ host: 'users', url: '/users/8', traceparent: tp }]);
    } finally {
      out.server.close();
    }
  });

  it('answers 502 USERS_FAILED with the mesh error when GetUser fails', async () => {
    const out = await fakeOutbound(() => ({ status: 503, headers: { 'x-meshlet-error': 'CIRCUIT_OPEN' }, body: { error: { code: 'CIRCUIT_OPEN' } } }));
    try {
      const { base } = await start(ORDERS, ['--outbound', out.address]);
      const r = await json(`${base}/orders/1`);
      expect(r.status).toBe(502);
      expect(r.body.error).toMatchObject({ code: 'USERS_FAILED', details: { status: 503, meshletError: 'CIRCUIT_OPEN' } });
    } finally {
      out.server.close();
    }
  });

  it('reports an unreachable sidecar as USERS_FAILED', async () => {
    const out = await fakeOutbound(() => ({ status: 200, body: {} }));
    const address = out.address;
    await new Promise((r) => out.server.close(r));
    const { base } = await start(ORDERS, ['--outbound', address]);
    const r = await json(`${base}/orders/1`);
    expect(r.status).toBe(502);
    expect(r.body.error.details.status).toBe(0);
  });
});

// When the client goes away, the sidecar aborts the upstream request: while waiting for response
// headers, in the middle of a streamed download, and in the middle of an upload. The breaker does not
// count the client's departure against the endpoint.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { patternStream, startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
  sidecar = await startSidecar({
    config: { services: { users: { endpoints: [{ address: up.address }], timeout: 0, circuitBreaker: { consecutiveFailures: 2 } } } },
    args: ['--app', up.address],
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  await stopAll();
  await up.close();
});

/** Starts a request through `listener` and hands back the request object, to be destroyed by the test. */
function open(listener: string, opts: { path: string; behaviour?: object; method?: string; headers?: Record<string, string> }): { req: http.ClientRequest; response: Promise<http.IncomingMessage> } {
  const colon = listener.lastIndexOf(':');
  const req = http.request({
    host: '127.0.0.1',
    port: Number(listener.slice(colon + 1)),
    path: opts.path,
    method: opts.method ?? 'GET',
    agent: false,
    headers: { host: 'users', ...(opts.behaviour ? { 'x-upstream-behaviour': JSON.stringify(opts.behaviour) } : {}), ...opts.headers },
  });
  const response = new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
  req.on('error', () => {}); // the test destroys it
  return { req, response };
}

const settled = async (before: { aborted: number }, n = 1): Promise<void> => {
  await waitFor(async () => {
    const s = await up.stats();
    return s.aborted >= before.aborted + n && s.inflight === 0;
  }, { timeoutMs: 5_000, what: 'upstream request aborted' });
};

describe('client disconnect aborts the upstream request', () => {
  for (const listener of ['outbound', 'inbound'] as const) {
    it(`while waiting for headers (${listener})`, async () => {
      const before = await up.stats();
      const { req } = open(sidecar[listener]!, { path: '/hang', behaviour: { kind: 'hang' } });
      req.end();
      await waitFor(async () => (await up.stats()).inflight === 1, { timeoutMs: 5_000, what: 'request at the upstream' });
      req.destroy();
      await settled(before);
    });
  }

  it('in the middle of a streamed download', async () => {
    const before = await up.stats();
    const { req, response } = open(sidecar.outbound, { path: '/big', behaviour: { kind: 'stream', bytes: 1024 ** 3 } });
    req.end();
    const res = await response;
    let got = 0;
    await new Promise<void>((resolve) => {
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 4 * 1024 * 1024) resolve();
      });
    });
    res.destroy();
    req.destroy();
    await settled(before);
    expect(got).toBeLessThan(1024 ** 3);
  });

  it('in the middle of an upload', async () => {
    const before = await up.stats();
    const { req } = open(sidecar.outbound, { path: '/upload', method: 'PUT', headers: { 'content-length': String(1024 ** 3) } });
    const body = patternStream(1024 ** 3);
    body.pipe(req);
    await waitFor(async () => (await up.stats()).inflight === 1, { timeoutMs: 5_000, what: 'upload at the upstream' });
    body.unpipe(req);
    body.destroy();
    req.destroy();
    await settled(before);
  });

  it('does not hold departures against the endpoint', async () => {
    const { body } = await sidecar.adminJson('/endpoints');
    expect(body.services.users.endpoints[0]).toMatchObject({ breaker: 'closed', consecutiveFailures: 0, inflight: 0 });
  });
});

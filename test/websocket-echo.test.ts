// WebSocket upgrades pass through the sidecar both ways: outbound (Host names the service, and the
// per-upstream port) and inbound (to the local app); text and binary frames echo back intact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { stopAll } from './harness/process.js';
import { startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'chat' });
  sidecar = await startSidecar({
    config: { services: { chat: { endpoints: [{ address: up.address }] } } },
    args: ['--app', up.address, '--upstream', 'chat=127.0.0.1:0'],
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  await stopAll();
  await up.close();
});

/** Opens a WebSocket, sends every message, and collects as many replies. */
async function echo(url: string, host: string | undefined, messages: Array<string | Buffer>): Promise<Array<string | Buffer>> {
  const ws = new WebSocket(url, host ? { headers: { host } } : {});
  const replies: Array<string | Buffer> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => replies.push(isBinary ? Buffer.from(data) : data.toString()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode} ${String(res.headers['x-meshlet-error'])}`)));
  });
  for (const m of messages) ws.send(m);
  await waitFor(() => replies.length === messages.length, { timeoutMs: 10_000, what: 'websocket replies' });
  const closed = new Promise((r) => ws.once('close', r));
  ws.close();
  await closed;
  return replies;
}

const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));

describe('websocket echo', () => {
  it('relays text and binary frames through the outbound listener by Host', async () => {
    const replies = await echo(`ws://${sidecar.outbound}/ws`, 'chat', ['hello', 'world', binary]);
    expect(replies[0]).toBe('chat:hello');
    expect(replies[1]).toBe('chat:world');
    expect(Buffer.compare(replies[2] as Buffer, binary)).toBe(0);
  });

  it('relays through the per-upstream port whatever the Host', async () => {
    expect(await echo(`ws://${sidecar.upstreams.chat}/ws`, undefined, ['via-port'])).toEqual(['chat:via-port']);
  });

  it('relays through the inbound listener to the app', async () => {
    expect(await echo(`ws://${sidecar.inbound}/ws`, 'chat', ['inbound'])).toEqual(['chat:inbound']);
  });

  it('closes the upstream side when the client goes away', async () => {
    const before = await up.stats();
    await echo(`ws://${sidecar.outbound}/ws`, 'chat', ['bye']);
    await waitFor(async () => (await up.stats()).connectionsClosed > before.connectionsClosed, { timeoutMs: 5_000, what: 'upstream websocket closed' });
  });

  it('refuses an upgrade to an unknown host with NO_ROUTE', async () => {
    await expect(echo(`ws://${sidecar.outbound}/ws`, 'nowhere', ['x'])).rejects.toThrow(/404 NO_ROUTE/);
  });
});

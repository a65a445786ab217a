// Relays an HTTP Upgrade (WebSocket): the upstream's 101 goes back to the client, then bytes flow
// both ways until either side closes; an error on one side tears down the other.
import type { Duplex } from 'node:stream';
import type { Headers } from '../../core/handler.js';

export async function relayUpgrade(
  client: Duplex,
  head: Buffer,
  open: (signal: AbortSignal) => Promise<{ headers: Headers; socket: Duplex }>,
): Promise<void> {
  const ac = new AbortController();
  const onEarlyClose = (): void => ac.abort();
  client.once('close', onEarlyClose);
  const { headers, socket: upstream } = await open(ac.signal);
  client.off('close', onEarlyClose);
  if (client.destroyed) {
    upstream.destroy();
    return;
  }
  let out = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}\r\n`;
  }
  client.write(`${out}\r\n`);
  if (head.length > 0) upstream.write(head);
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.pipe(client);
  client.pipe(upstream);
}

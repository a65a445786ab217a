// The deadline bench's hanging upstream: reads each request to its end and never answers, so only the
// sidecar's timers can end an exchange. Its own process. A second, control port reports what it saw
// (sockets open/closed, requests abandoned, and per `x-bench-id` when each try arrived and when its
// connection closed) without its own connections being counted on the hanging port.
// Times are epoch milliseconds with sub-ms precision (timeOrigin + now), comparable across processes
// on one machine to well under a millisecond.
// Usage: node dist/bench/hanging-upstream.js   (prints `listening` lines for `hanging` and `control`)
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HangingTry {
  /** When the request's headers were parsed here. */
  arrivedAt: number;
  /** When its connection closed (the sidecar gave up on it); undefined while still open. */
  closedAt: number | undefined;
}

export interface HangingStats {
  requests: number;
  /** Requests whose connection closed without an answer (all of them, here). */
  aborted: number;
  inflight: number;
  connectionsOpened: number;
  connectionsClosed: number;
  openConnections: number;
  /** Tries by the x-bench-id header the bench sends; bounded (oldest dropped beyond MAX_RECORDS). */
  tries: Record<string, HangingTry[]>;
}

const MAX_RECORDS = 20_000;
const epochMs = (): number => performance.timeOrigin + performance.now();

const stats: HangingStats = { requests: 0, aborted: 0, inflight: 0, connectionsOpened: 0, connectionsClosed: 0, openConnections: 0, tries: {} };
const order: string[] = [];
const sockets = new Set<Socket>();

// requestTimeout 0: Node's default (300 s) would answer 408 itself, which is not hanging.
const hanging = http.createServer({ requestTimeout: 0 }, (req, res) => {
  const t: HangingTry = { arrivedAt: epochMs(), closedAt: undefined };
  stats.requests++;
  stats.inflight++;
  const id = req.headers['x-bench-id'];
  if (typeof id === 'string') {
    if (!stats.tries[id]) {
      order.push(id);
      if (order.length > MAX_RECORDS) delete stats.tries[order.shift()!];
    }
    (stats.tries[id] ??= []).push(t);
  }
  req.resume(); // read the body (if any) to its end; then never answer
  res.once('close', () => {
    t.closedAt = epochMs();
    stats.inflight--;
    if (!res.writableFinished) stats.aborted++;
  });
});
hanging.on('connection', (s: Socket) => {
  sockets.add(s);
  stats.connectionsOpened++;
  stats.openConnections++;
  s.once('close', () => {
    sockets.delete(s);
    stats.connectionsClosed++;
    stats.openConnections--;
  });
});

const control = http.createServer((req, res) => {
  if (req.url !== '/stats') {
    res.writeHead(404).end();
    return;
  }
  const text = JSON.stringify(stats);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
});

for (const [name, server] of [['hanging', hanging], ['control', control]] as const) {
  server.listen(0, '127.0.0.1', () => {
    const a = server.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ msg: 'listening', listener: name, address: `${a.address}:${a.port}` })}\n`);
  });
}
process.on('SIGTERM', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});

// Peer for the bench: the floor of meshlet's design — node:http in front, undici's dispatch API
// behind (one Pool, chunks written straight to the response), and nothing else: no routing,
// balancing, retries, deadlines, breaker, metrics or forwarding headers. What meshlet costs above
// this is meshlet's own; what this costs is Node + undici's. Usage: node dist/bench/peers/undici-bare.js http://127.0.0.1:PORT
import http from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const target = process.argv[2];
if (!target) throw new Error('usage: undici-bare.js TARGET_URL');
const pool = new Pool(target, { connections: 64, pipelining: 1, keepAliveTimeout: 4_000 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade', 'host']);

class Relay implements Dispatcher.DispatchHandler {
  #res: http.ServerResponse;
  #resume: (() => void) | undefined;
  constructor(res: http.ServerResponse) {
    this.#res = res;
  }
  onConnect(): void {}
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1');
      if (!HOP.has(name.toLowerCase())) headers.push(name, raw[i + 1]!.toString('latin1'));
    }
    this.#res.writeHead(status, headers);
    this.#resume = resume;
    return true;
  }
  onData(chunk: Buffer): boolean {
    if (this.#res.write(chunk)) return true;
    this.#res.once('drain', () => this.#resume?.());
    return false;
  }
  onComplete(): void {
    this.#res.end();
  }
  onError(err: Error): void {
    if (!this.#res.headersSent) this.#res.writeHead(502, { 'content-type': 'text/plain' }).end(`proxy error: ${err.message}`);
    else this.#res.destroy(err);
  }
}

const server = http.createServer((req, res) => {
  const headers: Record<string, string | string[] | undefined> = {};
  for (const k in req.headers) if (!HOP.has(k)) headers[k] = req.headers[k];
  headers.host = req.headers.host;
  const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
  pool.dispatch({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: headers as Record<string, string>, body: bodyless ? null : req }, new Relay(res));
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as { address: string; port: number };
  process.stdout.write(`${JSON.stringify({ msg: 'listening', listener: 'undici-bare', address: `${a.address}:${a.port}` })}\n`);
});
process.on('SIGTERM', () => process.exit(0));

// Peer for the bench: node-http-proxy with a keep-alive agent and x-forwarded-* on (meshlet adds them
// too, so both do the same header work). Usage: node dist/bench/peers/http-proxy.js http://127.0.0.1:PORT
import http from 'node:http';
import httpProxy from 'http-proxy';

const target = process.argv[2];
if (!target) throw new Error('usage: http-proxy.js TARGET_URL');
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, keepAliveMsecs: 4_000 });
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true });
proxy.on('error', (err, _req, res) => {
  const r = res as http.ServerResponse;
  if (!r.headersSent) r.writeHead(502, { 'content-type': 'text/plain' });
  r.end(`proxy error: ${err.message}`);
});
const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as { address: string; port: number };
  process.stdout.write(`${JSON.stringify({ msg: 'listening', listener: 'http-proxy', address: `${a.address}:${a.port}` })}\n`);
});
process.on('SIGTERM', () => process.exit(0));

// The bench's upstream: a plain node:http server answering every request with a small fixed body,
// listening on as many loopback ports as asked (meshlet balances over two). Its own process, so its
// CPU is never counted as a proxy's.
import http from 'node:http';

const BODY = Buffer.from(JSON.stringify({ id: 42, name: 'bench', ok: true, pad: 'x'.repeat(40) }));
const ports = Math.max(1, Number(process.argv[2] ?? 1));

for (let i = 0; i < ports; i++) {
  const server = http.createServer((req, res) => {
    // Drain any request body so the connection stays reusable.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
      res.end(BODY);
    });
  });
  // Longer than every proxy's idle keep-alive, so no proxy races a server-side close.
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    const a = server.address() as { address: string; port: number };
    process.stdout.write(`${JSON.stringify({ msg: 'listening', listener: `upstream-${i}`, address: `${a.address}:${a.port}` })}\n`);
  });
}
process.on('SIGTERM', () => process.exit(0));

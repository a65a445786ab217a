// Every sidecar listener is a node:http server hardened the same way: strict parser (conflicting
// Content-Length/Transfer-Encoding, bad bytes → 400), bounded header size (431), a slow-headers
// deadline (408), and parse errors answered with meshlet's error body on that connection only.
import http from 'node:http';
import type { Socket } from 'node:net';
import { meshError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { writeRawError } from '../error-response.js';

export interface ServerLimits {
  maxHeaderSize: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = { maxHeaderSize: 16 * 1024, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 60_000 };

export function createHardenedServer(name: string, limits: ServerLimits, log: Logger, onRequest: http.RequestListener): http.Server {
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderSize,
      headersTimeout: limits.headersTimeoutMs,
      // Bodies may legitimately stream for long (1 GB uploads); slow headers are the attack to bound.
      requestTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Check the header deadline every second rather than Node's default 30 s.
      connectionsCheckingInterval: 1_000,
      insecureHTTPParser: false,
      requireHostHeader: false, // the outbound listener answers a missing Host itself, with a clear error
    },
    onRequest,
  );
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Socket) => {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    let e;
    if (code === 'HPE_HEADER_OVERFLOW') e = meshError('HEADERS_TOO_LARGE', `request headers exceed ${limits.maxHeaderSize} bytes`);
    else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') e = meshError('REQUEST_TIMEOUT', `request headers not received within ${limits.headersTimeoutMs}ms`);
    else e = meshError('BAD_REQUEST', `malformed HTTP request: ${err.reason ?? err.message} (${code || 'parse error'})`);
    log.debug({ listener: name, code, err: err.message }, 'refused malformed request');
    writeRawError(socket, e);
  });
  return server;
}

export function listen(server: http.Server, address: { host: string; port: number }): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      const a = server.address();
      if (a && typeof a === 'object') resolve({ host: a.address, port: a.port });
      else reject(new Error('server has no address'));
    });
  });
}

// The HTTP server both demo services share: their own route, plus the knobs every instance has
// (GET/POST /fault, GET /stats, GET /health). Faults apply to the service's route only, so the
// knobs stay reachable while the instance "fails".
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMeshError } from '../core/errors.js';
import { formatHostPort, type HostPort } from '../core/address.js';
import type { Logger } from '../core/log.js';
import type { FaultKnobs } from './fault-knobs.js';

export interface DemoReply {
  status: number;
  body: unknown;
}

/** Answers the service's own paths; undefined means 404. */
export type DemoRoute = (req: IncomingMessage, url: URL) => Promise<DemoReply | undefined>;

export interface DemoServerOptions {
  service: string;
  instance: string;
  version: string;
  listen: HostPort;
  knobs: FaultKnobs;
  log: Logger;
  route: DemoRoute;
  /** Exits the process after this many requests to the route (0: never). */
  crashAfter?: number;
}

export interface DemoStats {
  service: string;
  instance: string;
  version: string;
  requests: number;
  injectedErrors: number;
  hung: number;
}

export interface DemoServer {
  address: string;
  port: number;
  stats(): DemoStats;
  close(): Promise<void>;
}

const MAX_FAULT_BODY = 4096;

export async function startDemoServer(opts: DemoServerOptions): Promise<DemoServer> {
  const { knobs, log } = opts;
  const stats: DemoStats = { service: opts.service, instance: opts.instance, version: opts.version, requests: 0, injectedErrors: 0, hung: 0 };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-demo-instance': opts.instance,
      'x-demo-version': opts.version,
    });
    res.end(text);
  };
  const crash = (res: ServerResponse, why: string) => {
    log.warn({ instance: opts.instance, why }, 'crashing');
    // Exit once the reply is out, like a process that dies between two requests.
    res.once('finish', () => process.exit(70));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://demo');
    if (url.pathname === '/health') return send(res, 200, { status: 'ok', instance: opts.instance });
    if (url.pathname === '/stats' && req.method === 'GET') return send(res, 200, stats);
    if (url.pathname === '/fault') {
      if (req.method === 'GET') return send(res, 200, knobs.settings);
      if (req.method !== 'POST') return send(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'use GET or POST /fault' } });
      const raw = await readBody(req, MAX_FAULT_BODY);
      if (raw === undefined) return send(res, 413, { error: { code: 'REQUEST_TOO_LARGE', message: `fault settings are at most ${MAX_FAULT_BODY} bytes` } });
      let input: unknown;
      try {
        input = raw.length === 0 ? {} : JSON.parse(raw);
      } catch (e) {
        return send(res, 400, { error: { code: 'BAD_REQUEST', message: `POST /fault: body is not JSON: ${(e as Error).message}` } });
      }
      try {
        const { crash: crashNow, settings } = knobs.update(input);
        log.info({ instance: opts.instance, fault: settings, crash: crashNow }, 'fault settings changed');
        send(res, 200, { ...settings, crash: crashNow });
        if (crashNow) crash(res, 'POST /fault {"crash":true}');
        return;
      } catch (e) {
        if (isMeshError(e, 'BAD_REQUEST')) return send(res, 400, { error: { code: e.code, message: e.message, details: e.details } });
        throw e;
      }
    }

    stats.requests++;
    const fault = knobs.decide();
    if (fault.hang) {
      stats.hung++;
      return; // The socket stays open until the caller gives up or the server closes.
    }
    if (fault.latencyMs > 0) await delay(fault.latencyMs, req);
    if (req.destroyed) return;
    if (fault.fail) {
      stats.injectedErrors++;
      return send(res, 503, { error: { code: 'INJECTED_FAULT', message: `${opts.instance}: injected error (errorRate ${knobs.settings.errorRate})` } });
    }
    const reply = await opts.route(req, url);
    if (reply === undefined) send(res, 404, { error: { code: 'NOT_FOUND', message: `${req.method} ${url.pathname}: no such path on ${opts.service}` } });
    else send(res, reply.status, reply.body);
    if (opts.crashAfter && stats.requests >= opts.crashAfter) crash(res, `--crash-after ${opts.crashAfter}`);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e }, 'request failed');
      if (!res.headersSent) send(res, 500, { error: { code: 'INTERNAL', message: (e as Error).message } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000; // Longer than the sidecar pool's idle timeout, so the pool closes first.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = formatHostPort({ host: bound.address, port: bound.port });
  log.info({ listener: 'http', address, service: opts.service, instance: opts.instance, version: opts.version }, 'listening');
  return {
    address,
    port: bound.port,
    stats: () => ({ ...stats }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Hung requests never finish on their own.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      }),
  };
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Waits `ms`, or less when the caller goes away. */
function delay(ms: number, req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      req.socket.off('close', done);
      resolve();
    }
    req.socket.once('close', done);
  });
}

/**
 * SIGTERM/SIGINT: stop accepting, let requests in flight finish, exit 0. Call it before the server
 * announces itself: with no listener installed a SIGTERM kills the process outright.
 */
export function exitOnSignals(server: DemoServer | Promise<DemoServer>, log: Logger): void {
  const stop = (signal: string) => {
    log.info({ signal }, 'shutting down');
    Promise.resolve(server)
      .then((s) => s.close())
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

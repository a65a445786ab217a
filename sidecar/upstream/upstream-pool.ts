// A keep-alive connection pool per endpoint (undici), streaming both ways, and the mapping of
// transport errors to meshlet's stable codes. Only sidecar/upstream/ touches undici.
import type { Duplex } from 'node:stream';
import { isMeshError, meshError, type MeshError } from '../../core/errors.js';
import type { Headers, MeshRequest, MeshResponse } from '../../core/handler.js';
import type { UpstreamSignal } from './attempt-signal.js';
import { Agent, Pool, errors as undiciErrors, upgrade, type Dispatcher } from './undici.js';
import { UpstreamExchange } from './upstream-exchange.js';

export interface UpstreamPoolOptions {
  connections: number;
  connectTimeoutMs: number;
}

// Keep-alive shorter than Node's default server keepAliveTimeout (5 s) so we never reuse a socket the
// upstream is about to close (the classic keep-alive race that turns into spurious resets).
const KEEP_ALIVE_MS = 4_000;

export class UpstreamPool {
  readonly address: string;
  readonly options: UpstreamPoolOptions;
  #pool: Pool;
  readonly #servername: string;

  constructor(address: string, options: UpstreamPoolOptions) {
    this.address = address;
    this.options = options;
    this.#servername = hostOf(address);
    this.#pool = this.#open(options.connections);
  }

  #open(connections: number): Pool {
    return new Pool(`http://${this.address}`, {
      connections,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      // Deadlines are meshlet's (per-try and total, via the signal), not undici's.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { timeout: this.options.connectTimeoutMs },
    });
  }

  /**
   * The pool to send on. A request that started on an older snapshot may arrive after a newer one
   * retired this endpoint and closed its pool (its body was still coming in, say): it gets a one-off
   * pool, closed once that request is done, so a reload drops no request.
   */
  #dispatcher(): { pool: Pool; oneOff: boolean } {
    if (!this.#pool.closed && !this.#pool.destroyed) return { pool: this.#pool, oneOff: false };
    return { pool: this.#open(1), oneOff: true };
  }

  /**
   * Sends the request; resolves when response headers arrive, with the body still to relay or
   * discard. `signal` aborts the exchange (its reason is the error).
   */
  forward(req: MeshRequest, headers: Headers, signal: UpstreamSignal): Promise<MeshResponse> {
    headers.host = req.authority;
    const { pool, oneOff } = this.#dispatcher();
    const promise = dispatch(pool, undefined, this.address, this.#servername, req, headers, signal);
    // Graceful: undici waits for the response body before it closes.
    if (oneOff) void pool.close().catch(() => {});
    return promise;
  }

  /** Opens an upgraded (WebSocket) connection to the endpoint. */
  async upgrade(path: string, headers: Headers, protocol: string, signal: AbortSignal): Promise<{ headers: Headers; socket: Duplex }> {
    const { pool, oneOff } = this.#dispatcher();
    try {
      const r = await upgrade(pool, { path, method: 'GET', headers: headers as Record<string, string>, protocol, signal });
      return { headers: r.headers as Headers, socket: r.socket };
    } catch (err) {
      throw upstreamError(err, this.address, signal);
    } finally {
      if (oneOff) void pool.close().catch(() => {});
    }
  }

  get stats(): { connected: number; free: number; pending: number; running: number } {
    const s = this.#pool.stats;
    return { connected: s.connected, free: s.free, pending: s.pending, running: s.running };
  }

  /** Graceful: waits for requests in flight, then closes the sockets. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}

/** Forwards to arbitrary origins (egress passthrough); one agent shared by all such hosts. */
export class EgressAgent {
  #agent = new Agent({ connections: 32, keepAliveTimeout: KEEP_ALIVE_MS, headersTimeout: 0, bodyTimeout: 0, connect: { timeout: 5_000 } });

  forward(req: MeshRequest, headers: Headers, signal: UpstreamSignal): Promise<MeshResponse> {
    headers.host = req.authority;
    const origin = `http://${req.authority.includes(':') ? req.authority : `${req.authority}:80`}`;
    return dispatch(this.#agent, origin, req.authority, hostOf(req.authority), req, headers, signal);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

// undici derives a TLS server name from each request's Host (a hostname parse and an IP regex per
// request) unless one is given; these are plain-HTTP connections, so the endpoint's own host will do.
function hostOf(authority: string): string {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  return colon > close ? authority.slice(0, colon) : authority;
}

function dispatch(d: Dispatcher, origin: string | undefined, address: string, servername: string, req: MeshRequest, headers: Headers, signal: UpstreamSignal): Promise<MeshResponse> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(upstreamError(signal.reason, address, signal));
    const exchange = new UpstreamExchange(address, signal, (err) => upstreamError(err, address, signal), resolve, reject);
    d.dispatch(
      {
        origin,
        method: req.method as Dispatcher.HttpMethod,
        path: req.path,
        headers: headers as Record<string, string | string[]>,
        body: req.bufferedBody ?? req.body,
        servername,
      } as Dispatcher.DispatchOptions,
      exchange as unknown as Dispatcher.DispatchHandler,
    );
  });
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);

/** Maps a transport error to a MeshError with a stable code (never by message text). */
export function upstreamError(err: unknown, address: string, signal?: UpstreamSignal): MeshError {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (isMeshError(reason)) return reason;
    return meshError('CLIENT_CLOSED', 'the client went away', { endpoint: address }, err);
  }
  if (isMeshError(err)) return err;
  const code = (err as { code?: string }).code ?? '';
  if (CONNECT_CODES.has(code)) return meshError('UPSTREAM_CONNECT_FAILURE', `could not connect to ${address} (${code})`, { endpoint: address }, err);
  if (RESET_CODES.has(code)) return meshError('UPSTREAM_RESET', `${address} closed the connection before a complete response (${code})`, { endpoint: address }, err);
  // undici 7's HTTPParserError carries no code (its code table maps names to numbers), so check the class.
  if (err instanceof undiciErrors.HTTPParserError) return meshError('UPSTREAM_PROTOCOL_ERROR', `${address} sent an invalid response (${(err as Error).message})`, { endpoint: address }, err);
  if (code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH')
    return meshError('UPSTREAM_PROTOCOL_ERROR', `${address} sent an invalid response (${code})`, { endpoint: address }, err);
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') return meshError('BAD_REQUEST', 'the request body does not match its Content-Length', { endpoint: address }, err);
  return meshError('UPSTREAM_RESET', `request to ${address} failed: ${(err as Error).message ?? String(err)}`, { endpoint: address }, err);
}

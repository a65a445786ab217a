// The app's calls to its peers. A request names its service three ways: proxy form
// (`GET http://users/x`, HTTP_PROXY), a Host header naming the service, or the local port declared
// for one upstream. The route is resolved against the snapshot in force when the request started.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { meshError, type MeshError } from '../../core/errors.js';
import type { Handler, MeshRequest, RequestInfo } from '../../core/handler.js';
import type { SidecarObserver } from '../../core/telemetry/observer.js';
import { toMeshError, writeError, writeRawError } from '../error-response.js';
import { isBodyless, runExchange } from '../exchange.js';
import { addForwardedHeaders, requestHeadersForUpstream } from '../headers.js';
import type { Runtime } from '../runtime.js';
import type { EgressAgent } from '../upstream/upstream-pool.js';
import { AttemptSignal } from '../upstream/attempt-signal.js';
import { DEFAULTS } from '../../core/config/normalize.js';
import { relayUpgrade } from './upgrade.js';
import type { DrainGate } from '../drain-gate.js';

export interface OutboundDeps {
  runtime: () => Runtime | undefined;
  egress: EgressAgent;
  observer: SidecarObserver;
  gate: DrainGate;
}

interface Target {
  authority: string;
  hostname: string;
  path: string;
}

/** Splits the request target into authority and origin-form path, or explains why it cannot. */
function target(req: IncomingMessage): Target | MeshError {
  const url = req.url ?? '/';
  let authority: string | undefined;
  let path: string;
  if (url.charCodeAt(0) === 47 /* / */) {
    authority = req.headers.host;
    path = url;
  } else if (url.startsWith('http://')) {
    const slash = url.indexOf('/', 7);
    authority = slash === -1 ? url.slice(7) : url.slice(7, slash);
    path = slash === -1 ? '/' : url.slice(slash);
  } else if (url.startsWith('https://')) {
    return meshError('BAD_REQUEST', 'https:// targets are not proxied: send plain http:// to the sidecar, it carries the call to the peer');
  } else {
    return meshError('BAD_REQUEST', `unsupported request target ${JSON.stringify(url.slice(0, 100))}`);
  }
  if (!authority) return meshError('BAD_REQUEST', 'the request names no service: give a Host header or an absolute http:// URI');
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1);
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  const hostname = (colon > close ? authority.slice(0, colon) : authority).toLowerCase();
  return { authority, hostname, path };
}

function resolveHandler(rt: Runtime | undefined, fixedService: string | undefined, t: Target, req: IncomingMessage, deps: OutboundDeps, info: RequestInfo): Handler | MeshError {
  if (!rt) return meshError('NO_HEALTHY_UPSTREAM', 'the sidecar has no config yet (waiting for the control plane)');
  const service = fixedService ?? rt.routes.serviceFor(t.hostname);
  const route = rt.routes.resolve(service, t.hostname, req.method ?? 'GET', t.path, req.headers);
  if (route) {
    info.service = route.service;
    info.route = route.name;
    return route.handler;
  }
  if (service !== undefined) return meshError('NO_ROUTE', `no route of service ${service} matches ${req.method} ${t.path}`, { service });
  if (rt.config.egressPassthrough) {
    info.service = 'egress';
    info.route = 'passthrough';
    return egressHandler(deps);
  }
  return meshError('NO_ROUTE', `"${t.hostname}" is no mesh service and egress passthrough is off`, { host: t.hostname });
}

// Hosts outside the mesh get the default service deadline too: a hanging external host must not hold
// the caller's request (and a pooled connection) forever.
function egressHandler(deps: OutboundDeps): Handler {
  return async (r, ctx) => {
    const headers = { ...r.headers };
    ctx.info.endpoint = r.authority;
    const attempt = ctx.telemetry?.attemptStarted(ctx.attempt, r.authority, headers);
    const signal = new AttemptSignal();
    const onClientAbort = (): void => signal.abort(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onClientAbort);
    const done = (): void => ctx.signal.removeEventListener('abort', onClientAbort);
    const timer = setTimeout(() => signal.abort(meshError('UPSTREAM_TIMEOUT', `no response from ${r.authority} within ${DEFAULTS.timeoutMs}ms (egress)`, { endpoint: r.authority })), DEFAULTS.timeoutMs);
    try {
      const res = await deps.egress.forward(r, headers, signal);
      clearTimeout(timer);
      attempt?.end(res.status, undefined);
      if (res.body) res.body.onDone(done);
      else done();
      return res;
    } catch (e) {
      clearTimeout(timer);
      done();
      attempt?.end(undefined, toMeshError(e).code);
      throw e;
    }
  };
}

export function outboundListener(deps: OutboundDeps, fixedService?: string): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const t = target(req);
    const info: RequestInfo = { attempts: 1, retries: 0 };
    if ('code' in t) {
      info.errorCode = t.code;
      deps.observer.requestStarted({ direction: 'outbound', method: req.method ?? '', authority: '', path: '', headers: req.headers, startedAt: performance.now() }).end({ status: t.status, info, durationMs: 0, bytesIn: 0, bytesOut: 0 });
      writeError(res, t);
      return;
    }
    const handler = resolveHandler(deps.runtime(), fixedService, t, req, deps, info);
    const headers = requestHeadersForUpstream(req.headers);
    headers['x-request-id'] ??= randomUUID();
    addForwardedHeaders(headers, req.socket.remoteAddress, t.authority, 'http');
    const meshReq: MeshRequest = { method: req.method ?? 'GET', path: t.path, authority: t.authority, headers, body: req, bodyless: isBodyless(req) };
    if (meshReq.bodyless) meshReq.body = null;
    const h: Handler = 'code' in handler ? () => Promise.reject(handler) : handler;
    runExchange(h, req, res, meshReq, info, deps.observer, 'outbound', deps.gate);
  };
}

/** WebSocket (and other Upgrade) requests: pick an endpoint like a request would, then relay bytes. */
export function outboundUpgrade(deps: OutboundDeps, fixedService?: string) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const t = target(req);
    if ('code' in t) return writeRawError(socket, t);
    const info: RequestInfo = { attempts: 1, retries: 0 };
    const rt = deps.runtime();
    const service = fixedService ?? rt?.routes.serviceFor(t.hostname);
    const route = rt?.routes.resolve(service, t.hostname, req.method ?? 'GET', t.path, req.headers);
    if (!route) return writeRawError(socket, meshError('NO_ROUTE', `no route for upgrade to ${t.hostname}${t.path}`));
    const ep = route.upgradeBackend.pickEndpoint();
    if ('code' in ep) return writeRawError(socket, ep);
    info.endpoint = ep.address;
    const headers = requestHeadersForUpstream(req.headers);
    addForwardedHeaders(headers, req.socket.remoteAddress, t.authority, 'http');
    headers.host = t.authority;
    relayUpgrade(socket, head, (signal) => ep.pool.upgrade(t.path, headers, String(req.headers.upgrade ?? 'websocket'), signal)).catch((e) => writeRawError(socket, toMeshError(e)));
  };
}

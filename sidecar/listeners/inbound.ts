// Calls from peers to the local app: a concurrency limit, then the app's own keep-alive pool.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { meshError } from '../../core/errors.js';
import type { Handler, MeshRequest, RequestInfo } from '../../core/handler.js';
import type { SidecarObserver } from '../../core/telemetry/observer.js';
import { toMeshError, writeRawError } from '../error-response.js';
import { isBodyless, runExchange } from '../exchange.js';
import { addForwardedHeaders, requestHeadersForUpstream } from '../headers.js';
import { ConcurrencyLimit } from '../resilience/concurrency-limit.js';
import type { UpstreamPool } from '../upstream/upstream-pool.js';
import { relayUpgrade } from './upgrade.js';
import type { DrainGate } from '../drain-gate.js';

export interface InboundDeps {
  service: string;
  app: UpstreamPool;
  maxRequests: number;
  observer: SidecarObserver;
  gate: DrainGate;
}

export function inboundListener(deps: InboundDeps): RequestListener {
  const limit = new ConcurrencyLimit(deps.maxRequests);
  const toApp: Handler = async (req, ctx) => {
    if (!limit.tryAcquire()) {
      deps.observer.overflow(deps.service, 'requests');
      throw meshError('OVERFLOW', `${deps.service}: ${limit.max} inbound requests already in flight (--inbound-max-requests)`, { service: deps.service });
    }
    ctx.info.endpoint = deps.app.address;
    const headers = req.headers; // one attempt: nothing to keep apart
    const attempt = ctx.telemetry?.attemptStarted(1, deps.app.address, headers);
    try {
      const res = await deps.app.forward(req, headers, ctx.signal);
      attempt?.end(res.status, undefined);
      if (res.body) res.body.onDone(() => limit.release());
      else limit.release();
      return res;
    } catch (e) {
      limit.release();
      attempt?.end(undefined, toMeshError(e).code);
      throw e;
    }
  };
  return (req: IncomingMessage, res: ServerResponse) => {
    const authority = req.headers.host ?? deps.service;
    const headers = requestHeadersForUpstream(req.headers);
    addForwardedHeaders(headers, req.socket.remoteAddress, authority, 'http');
    const meshReq: MeshRequest = { method: req.method ?? 'GET', path: req.url ?? '/', authority, headers, body: req, bodyless: isBodyless(req) };
    if (meshReq.bodyless) meshReq.body = null;
    const info: RequestInfo = { service: deps.service, route: 'inbound', backend: 'app', attempts: 1, retries: 0 };
    runExchange(toApp, req, res, meshReq, info, deps.observer, 'inbound', deps.gate);
  };
}

export function inboundUpgrade(deps: InboundDeps) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const headers = requestHeadersForUpstream(req.headers);
    headers.host = req.headers.host ?? deps.service;
    addForwardedHeaders(headers, req.socket.remoteAddress, headers.host, 'http');
    relayUpgrade(socket, head, (signal) => deps.app.upgrade(req.url ?? '/', headers, String(req.headers.upgrade ?? 'websocket'), signal)).catch((e) =>
      writeRawError(socket, toMeshError(e)),
    );
  };
}

// Runs one request through a prebuilt handler and streams the answer back: the glue between a
// node:http request and the Handler world, shared by the inbound and outbound listeners.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { meshError } from '../core/errors.js';
import type { Handler, MeshRequest, RequestContext, RequestInfo } from '../core/handler.js';
import type { Direction, SidecarObserver } from '../core/telemetry/observer.js';
import { toMeshError, writeError } from './error-response.js';
import { rawHeaderValue, rawResponseHeadersForClient, responseHeadersForClient } from './headers.js';
import { AttemptSignal } from './upstream/attempt-signal.js';

export function isBodyless(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (cl === undefined || cl === '0');
}

function declaredLength(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function runExchange(
  handler: Handler,
  req: IncomingMessage,
  res: ServerResponse,
  meshReq: MeshRequest,
  info: RequestInfo,
  observer: SidecarObserver,
  direction: Direction,
  closing: () => boolean,
): void {
  const startedAt = performance.now();
  const socket = req.socket;
  const readAtStart = socket.bytesRead;
  const writtenAtStart = socket.bytesWritten;
  const ac = new AttemptSignal(); // the request's signal: client gone → every attempt aborts
  let declaredOut: number | undefined;
  const telemetry = observer.requestStarted({ direction, method: meshReq.method, authority: meshReq.authority, path: meshReq.path, headers: req.headers, startedAt });
  res.once('close', () => {
    if (!res.writableFinished) {
      ac.abort(meshError('CLIENT_CLOSED', 'the client went away before the response completed'));
      info.errorCode ??= 'CLIENT_CLOSED';
    }
    telemetry.end({
      status: res.headersSent ? res.statusCode : 499,
      info,
      durationMs: performance.now() - startedAt,
      // Body bytes: the declared lengths; a chunked body falls back to the socket's count (headers included).
      bytesIn: declaredLength(req.headers['content-length']) ?? (meshReq.bodyless ? 0 : socket.bytesRead - readAtStart),
      bytesOut: declaredOut ?? declaredLength(res.getHeader('content-length')) ?? socket.bytesWritten - writtenAtStart,
    });
  });
  const ctx: RequestContext = { signal: ac, deadline: Infinity, attempt: 1, info, telemetry };

  handler(meshReq, ctx).then(
    (up) => {
      const body = up.body;
      if (res.destroyed) {
        body?.discard();
        return;
      }
      try {
        if (up.rawHeaders !== undefined) res.writeHead(up.status, rawResponseHeadersForClient(up.rawHeaders, closing()));
        else {
          const headers = responseHeadersForClient(up.headers);
          if (closing()) headers.connection = 'close';
          res.writeHead(up.status, headers);
        }
      } catch (e) {
        body?.discard();
        writeError(res, meshError('UPSTREAM_PROTOCOL_ERROR', `upstream sent headers that cannot be relayed: ${(e as Error).message}`));
        return;
      }
      declaredOut = declaredLength(up.rawHeaders !== undefined ? rawHeaderValue(up.rawHeaders, 'content-length') : up.headers['content-length']);
      if (body === null) res.end();
      // A HEAD response ends without a body; relaying it just ends ours.
      else body.relay(res);
    },
    (err: unknown) => {
      const e = toMeshError(err);
      info.errorCode ??= e.code;
      writeError(res, e, closing() ? { connection: 'close' } : undefined);
    },
  );
}

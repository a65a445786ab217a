// Runs one request through a prebuilt handler and streams the answer back: the glue between a
// node:http request and the Handler world, shared by the inbound and outbound listeners.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { meshError } from '../core/errors.js';
import type { Handler, MeshRequest, RequestContext, RequestInfo, ResponseBody } from '../core/handler.js';
import type { Direction, SidecarObserver } from '../core/telemetry/observer.js';
import { toMeshError, writeError } from './error-response.js';
import { rawResponseHeadersForClient, responseHeadersForClient } from './headers.js';
import { AttemptSignal } from './upstream/attempt-signal.js';
import type { DrainGate } from './drain-gate.js';

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
  gate: DrainGate,
): void {
  const startedAt = performance.now();
  gate.active++;
  // A chunked request body is counted off the socket (headers included); most have a length or none.
  const readAtStart = meshReq.bodyless ? 0 : req.socket.bytesRead;
  const ac = new AttemptSignal(); // the request's signal: client gone → every attempt aborts
  let bytesOut: number | undefined; // an error body's length; a relayed body counts itself
  let relayed: ResponseBody | null = null;
  const telemetry = observer.requestStarted({ direction, method: meshReq.method, authority: meshReq.authority, path: meshReq.path, headers: req.headers, startedAt });
  res.once('close', () => {
    gate.active--;
    if (!res.writableFinished) {
      ac.abort(meshError('CLIENT_CLOSED', 'the client went away before the response completed'));
      info.errorCode ??= 'CLIENT_CLOSED';
    }
    telemetry.end({
      status: res.headersSent ? res.statusCode : 499,
      info,
      durationMs: performance.now() - startedAt,
      bytesIn: declaredLength(req.headers['content-length']) ?? (meshReq.bodyless ? 0 : req.socket.bytesRead - readAtStart),
      bytesOut: bytesOut ?? relayed?.relayedBytes ?? 0,
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
        if (up.rawHeaders !== undefined) res.writeHead(up.status, rawResponseHeadersForClient(up.rawHeaders, gate.draining));
        else {
          const headers = responseHeadersForClient(up.headers);
          if (gate.draining) headers.connection = 'close';
          res.writeHead(up.status, headers);
        }
      } catch (e) {
        body?.discard();
        bytesOut = writeError(res, meshError('UPSTREAM_PROTOCOL_ERROR', `upstream sent headers that cannot be relayed: ${(e as Error).message}`));
        return;
      }
      if (body === null) res.end();
      else {
        // A HEAD response ends without a body; relaying it just ends ours.
        relayed = body;
        body.relay(res);
      }
    },
    (err: unknown) => {
      const e = toMeshError(err);
      info.errorCode ??= e.code;
      bytesOut = writeError(res, e, gate.draining ? { connection: 'close' } : undefined);
    },
  );
}

// The one "rescue" module (linkerd's l5d-proxy-error): every response the sidecar makes itself is
// written here, with `x-meshlet-error: CODE` and a JSON body.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody, isMeshError, meshError, type MeshError } from '../core/errors.js';

export function toMeshError(err: unknown): MeshError {
  return isMeshError(err) ? err : meshError('INTERNAL', `internal error: ${(err as Error)?.message ?? String(err)}`, undefined, err);
}

/**
 * Writes the error as the response, or destroys the connection if the response already started.
 * Returns the body bytes written (undefined when none could be).
 */
export function writeError(res: ServerResponse, err: MeshError, extraHeaders?: Record<string, string>): number | undefined {
  if (res.headersSent) {
    res.destroy(err);
    return undefined;
  }
  if (err.code === 'CLIENT_CLOSED' || res.destroyed) return undefined;
  const body = errorBody(err);
  const length = Buffer.byteLength(body);
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'content-length': length,
    'x-meshlet-error': err.code,
    ...extraHeaders,
  });
  res.end(body);
  return length;
}

/** For errors before there is a ServerResponse (parse errors, upgrades): a raw HTTP/1.1 reply, then close. */
export function writeRawError(socket: Socket | import('node:stream').Duplex, err: MeshError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = errorBody(err);
  socket.end(
    `HTTP/1.1 ${err.status} ${statusText(err.status)}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-meshlet-error: ${err.code}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function statusText(status: number): string {
  switch (status) {
    case 400: return 'Bad Request';
    case 404: return 'Not Found';
    case 405: return 'Method Not Allowed';
    case 408: return 'Request Timeout';
    case 413: return 'Payload Too Large';
    case 431: return 'Request Header Fields Too Large';
    case 502: return 'Bad Gateway';
    case 503: return 'Service Unavailable';
    case 504: return 'Gateway Timeout';
    default: return 'Error';
  }
}

// The one registry of meshlet error codes. Adding a code is one line here and one row in
// docs/errors.md; test/errors-registry.test.ts fails when the two disagree.

export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, summary: 'The request is malformed (bad header bytes, conflicting framing, bad target).' },
  UNAUTHORIZED: { status: 401, summary: 'A mutating API call lacks a valid bearer token.' },
  NOT_FOUND: { status: 404, summary: 'The API resource does not exist.' },
  NO_ROUTE: { status: 404, summary: 'No route matches the request and egress passthrough is off.' },
  REQUEST_TIMEOUT: { status: 408, summary: 'The client did not send complete request headers in time (slow-headers guard).' },
  METHOD_NOT_ALLOWED: { status: 405, summary: 'The listener does not take this method (e.g. CONNECT tunnels on the outbound listener).' },
  REQUEST_TOO_LARGE: { status: 413, summary: 'A request body exceeds a configured limit.' },
  HEADERS_TOO_LARGE: { status: 431, summary: 'The request headers exceed the configured size.' },
  CONFIG_INVALID: { status: 422, summary: 'A config was refused; the body lists every violation with its path and line:column.' },
  CONFLICT: { status: 409, summary: 'A write was based on a stale version (optimistic concurrency).' },
  NO_HEALTHY_UPSTREAM: { status: 503, summary: 'The backend has no endpoint that could take the request.' },
  CIRCUIT_OPEN: { status: 503, summary: 'Every endpoint of the backend is ejected by its circuit breaker.' },
  OVERFLOW: { status: 503, summary: 'A concurrency limit (max requests, max pending) is reached.' },
  RETRY_BUDGET_EXHAUSTED: { status: 503, summary: 'A retry was needed but the retry budget refused it; the last failure is reported.' },
  UPSTREAM_TIMEOUT: { status: 504, summary: 'The request deadline (or the last per-try timeout) expired before the upstream answered.' },
  UPSTREAM_CONNECT_FAILURE: { status: 502, summary: 'No connection could be made to the chosen endpoint.' },
  UPSTREAM_RESET: { status: 502, summary: 'The upstream closed or reset the connection before a complete response.' },
  UPSTREAM_PROTOCOL_ERROR: { status: 502, summary: 'The upstream sent an invalid HTTP response.' },
  CLIENT_CLOSED: { status: 499, summary: 'The client went away before the response; logged, never sent.' },
  UNAVAILABLE: { status: 503, summary: 'A dependency of the control plane (its store) is unavailable.' },
  INTERNAL: { status: 500, summary: 'A bug in meshlet; the log has the stack.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MeshError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MeshError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = options?.details;
  }
}

export function isMeshError(e: unknown, code?: ErrorCode): e is MeshError {
  return e instanceof MeshError && (code === undefined || e.code === code);
}

export function meshError(code: ErrorCode, message: string, details?: Record<string, unknown>, cause?: unknown): MeshError {
  return new MeshError(code, message, { details, cause });
}

/** The JSON body of every response meshlet makes itself. */
export function errorBody(e: MeshError): string {
  const body: { error: { code: string; message: string; details?: unknown } } = { error: { code: e.code, message: e.message } };
  if (e.details !== undefined) body.error.details = e.details;
  return JSON.stringify(body);
}

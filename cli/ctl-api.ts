// What `meshlet ctl` uses to talk to the control plane: one call function that turns every failure
// into a CtlError carrying the exit code scripts rely on (see docs/control-plane.md).
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, unauthorized: 4 } as const;

export class CtlError extends Error {
  readonly exitCode: number;
  readonly body: { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined;
  constructor(message: string, exitCode: number, body?: CtlError['body']) {
    super(message);
    this.exitCode = exitCode;
    this.body = body;
  }
}

export interface CtlApiOptions {
  baseUrl: string;
  token?: string;
  timeoutMs?: number;
}

export class CtlApi {
  #o: CtlApiOptions;

  constructor(opts: CtlApiOptions) {
    try {
      const u = new URL(opts.baseUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new CtlError(`--control-plane: expected an http(s) URL such as http://127.0.0.1:15010, got "${opts.baseUrl}"`, EXIT.usage);
    }
    this.#o = opts;
  }

  /** Calls the API; resolves with the parsed JSON (or text) of a 2xx answer, throws CtlError otherwise. */
  async call<T = unknown>(method: string, path: string, opts: { body?: string; contentType?: string; headers?: Record<string, string>; accept?: string } = {}): Promise<T> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    if (opts.accept) headers.accept = opts.accept;
    if (this.#o.token) headers.authorization = `Bearer ${this.#o.token}`;
    const url = new URL(path, this.#o.baseUrl);
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: opts.body, signal: AbortSignal.timeout(this.#o.timeoutMs ?? 10_000) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = (e as Error).name === 'TimeoutError' ? `no answer within ${this.#o.timeoutMs ?? 10_000} ms` : (cause?.code ?? cause?.message ?? (e as Error).message);
      throw new CtlError(`cannot reach the control plane at ${this.#o.baseUrl} (${why}); is it running? Set --control-plane or MESHLET_CONTROL_PLANE.`, EXIT.unreachable);
    }
    const text = await res.text();
    const isJson = (res.headers.get('content-type') ?? '').includes('json');
    const body = isJson && text ? (JSON.parse(text) as unknown) : text;
    if (res.ok) return body as T;
    const err = (body as CtlError['body'])?.error;
    const msg = err?.message ?? `HTTP ${res.status}`;
    if (res.status === 401) {
      throw new CtlError(`${this.#o.token ? 'the token was refused' : 'this call needs a token'} (${msg}); set --token or MESHLET_TOKEN`, EXIT.unauthorized, body as CtlError['body']);
    }
    if (res.status === 503 || res.status === 502 || res.status === 504) throw new CtlError(`the control plane is unavailable: ${msg}`, EXIT.unreachable, body as CtlError['body']);
    throw new CtlError(msg, EXIT.refused, body as CtlError['body']);
  }
}

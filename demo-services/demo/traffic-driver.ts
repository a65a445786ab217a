// The demo's client: GetOrder requests to orders (through orders' sidecar inbound) at a steady
// rate, a bounded number of them, each outcome reported with the users instance that served it.
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import type { HostPort } from '../../core/address.js';

export interface TrafficOptions {
  target: HostPort;
  /** Requests per second. */
  rps: number;
  /** Most requests in flight at once. */
  concurrency: number;
  /** Hard cap on requests sent. */
  maxRequests: number;
  /** Per-request deadline; a request without an answer by then counts as failed. */
  timeoutMs: number;
  signal: AbortSignal;
  /** `failure` names why a request failed: "502 USERS_FAILED/UPSTREAM_TIMEOUT", "client timeout", … */
  onResult: (ok: boolean, instance: string | undefined, failure: string | undefined) => void;
}

export class TrafficDriver {
  readonly #o: TrafficOptions;
  readonly #agent: http.Agent;
  #next = 0;

  constructor(opts: TrafficOptions) {
    if (!(opts.rps > 0) || !(opts.concurrency > 0) || !(opts.maxRequests >= 0)) throw new RangeError('rps and concurrency must be positive');
    this.#o = opts;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  }

  get sent(): number {
    return this.#next;
  }

  /** Sends until the signal aborts or maxRequests is reached; resolves once every request has settled. */
  async run(): Promise<void> {
    let start = performance.now();
    const interval = 1000 / this.#o.rps;
    // Every worker ahead of schedule waits on the one signal: up to `concurrency` listeners at once is
    // the design, not a leak (Node warns past 10).
    setMaxListeners(this.#o.concurrency + 1, this.#o.signal);
    const worker = async () => {
      while (!this.#o.signal.aborted && this.#next < this.#o.maxRequests) {
        const k = this.#next++;
        let wait = start + k * interval - performance.now();
        // More than a second behind (a stalled machine): drop the missed slots instead of bursting.
        if (wait < -1000) {
          start -= wait;
          wait = 0;
        }
        if (wait > 1) await pause(wait, this.#o.signal);
        if (this.#o.signal.aborted) {
          this.#next--;
          break;
        }
        const r = await this.#getOrder(k);
        this.#o.onResult(r.ok, r.instance, r.failure);
      }
    };
    await Promise.all(Array.from({ length: this.#o.concurrency }, worker));
    this.#agent.destroy();
  }

  #getOrder(k: number): Promise<{ ok: boolean; instance: string | undefined; failure: string | undefined }> {
    return new Promise((resolve) => {
      let failure = 'connection error';
      const req = http.request(
        { host: this.#o.target.host, port: this.#o.target.port, path: `/orders/${(k % 1000) + 1}`, headers: { host: 'orders' }, agent: this.#agent, timeout: this.#o.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let body: { user?: { servedBy?: { instance?: string } }; error?: { code?: string; details?: { status?: number; meshletError?: string } } } = {};
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
            } catch {
              /* not JSON */
            }
            if (status === 200) return resolve({ ok: true, instance: body.user?.servedBy?.instance, failure: undefined });
            // The mesh's own error code when there is one (orders relays its sidecar's), else the app's.
            const code = [res.headers['x-meshlet-error'], body.error?.code].filter(Boolean).join('/');
            // orders says what its own call to users got back: a status (0: no answer) and the mesh's code.
            const inner = body.error?.details;
            const users = inner && inner.status !== undefined ? ` (users: ${inner.status}${inner.meshletError ? ` ${inner.meshletError}` : ''})` : '';
            resolve({ ok: false, instance: undefined, failure: `${status}${code ? ` ${code}` : ''}${users}` });
          });
          res.on('error', () => resolve({ ok: false, instance: undefined, failure: 'response aborted' }));
        },
      );
      req.on('timeout', () => {
        failure = 'client timeout';
        req.destroy(new Error('timeout'));
      });
      req.on('error', () => resolve({ ok: false, instance: undefined, failure }));
      req.end();
    });
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

// The demo's client: GetOrder requests to orders (through orders' sidecar inbound) at a steady
// rate, a bounded number of them, each outcome reported with the users instance that served it.
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
  onResult: (ok: boolean, instance: string | undefined, status: number) => void;
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
    const start = performance.now();
    const interval = 1000 / this.#o.rps;
    const worker = async () => {
      while (!this.#o.signal.aborted && this.#next < this.#o.maxRequests) {
        const k = this.#next++;
        const wait = start + k * interval - performance.now();
        if (wait > 1) await pause(wait, this.#o.signal);
        if (this.#o.signal.aborted) {
          this.#next--;
          break;
        }
        const r = await this.#getOrder(k);
        this.#o.onResult(r.ok, r.instance, r.status);
      }
    };
    await Promise.all(Array.from({ length: this.#o.concurrency }, worker));
    this.#agent.destroy();
  }

  #getOrder(k: number): Promise<{ ok: boolean; instance: string | undefined; status: number }> {
    return new Promise((resolve) => {
      const req = http.request(
        { host: this.#o.target.host, port: this.#o.target.port, path: `/orders/${(k % 1000) + 1}`, headers: { host: 'orders' }, agent: this.#agent, timeout: this.#o.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let instance: string | undefined;
            try {
              instance = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { user?: { servedBy?: { instance?: string } } }).user?.servedBy?.instance;
            } catch {
              /* an error page */
            }
            resolve({ ok: status === 200, instance, status });
          });
          res.on('error', () => resolve({ ok: false, instance: undefined, status: res.statusCode ?? 0 }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve({ ok: false, instance: undefined, status: 0 }));
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

// A TEST DOUBLE of the few Consul HTTP API endpoints meshlet uses — not Consul. No Consul agent
// can be installed on our machines (not in Debian bookworm, not on npm; see ../shared/TESTING.md),
// and @hashicorp/consul-api-double fakes a UI (random data, blocking queries that ignore changes).
// So this small node:http server implements, as Consul documents them:
//   GET /v1/health/service/:name?passing&tag=&dc=&index=&wait=   (blocking query: holds until the
//       raft index moves past `index` or `wait` elapses; X-Consul-Index on every answer; index 0
//       never blocks; an unknown dc is a 500 "No path to datacenter")
//   PUT /v1/agent/service/register     (Name, ID, Address, Port, Tags, Meta, Weights, Check{TTL,
//       DeregisterCriticalServiceAfter, Status}); a TTL check starts critical until first passed
//   PUT /v1/agent/check/pass/:checkId  (resets the TTL; service checks are "service:<id>")
//   PUT /v1/agent/service/deregister/:id
// plus test controls: set instances, move the index (also backwards, as after a snapshot restore),
// fail requests with a status, and record every request so tests can assert index/wait use.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface ConsulInstance {
  id: string;
  port: number;
  /** Service.Address; empty means "use the node's address" (as in Consul). */
  address?: string;
  node?: string;
  nodeAddress?: string;
  tags?: string[];
  meta?: Record<string, string>;
  weights?: { passing: number; warning: number };
  status?: CheckStatus;
}

interface Registered extends Required<Omit<ConsulInstance, 'weights'>> {
  service: string;
  weights: { passing: number; warning: number };
  ttlMs?: number;
  deregisterAfterMs?: number;
  ttlTimer?: NodeJS.Timeout;
  reapTimer?: NodeJS.Timeout;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
}

const GO_DURATION = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration subset Consul accepts ("10s", "1m30s", "500ms"); undefined if malformed. */
export function parseGoDuration(s: string): number | undefined {
  if (!/^((\d+(\.\d+)?)(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  let ms = 0;
  for (const m of s.matchAll(GO_DURATION)) ms += Number(m[1]) * GO_UNITS[m[2]!]!;
  return ms;
}

export class ConsulDouble {
  readonly datacenter = 'dc1';
  readonly requests: RecordedRequest[] = [];
  #server: http.Server;
  #index = 1;
  #services = new Map<string, Map<string, Registered>>();
  #waiters = new Set<() => void>();
  #failures: Array<number> = [];
  #failAlways: number | null = null;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(): Promise<ConsulDouble> {
    const server = http.createServer();
    const d = new ConsulDouble(server);
    server.on('request', (req, res) => d.#handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return d;
  }

  /** "127.0.0.1:PORT" of the double, for discovery.consul.address. */
  get address(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  get index(): number {
    return this.#index;
  }

  /** Replaces the instances of a service (a catalog write: the index moves forward). */
  setInstances(service: string, instances: ConsulInstance[]): void {
    for (const r of this.#services.get(service)?.values() ?? []) this.#clearTimers(r);
    this.#services.set(service, new Map(instances.map((i) => [i.id, this.#fill(service, i)])));
    this.#bump();
  }

  /** Sets the raft index, also backwards (snapshot restore, leader change): blocked queries see it. */
  setIndex(index: number): void {
    this.#index = index;
    this.#wake();
  }

  /** The next `count` health queries answer with `status` (default 500). */
  failNext(count: number, status = 500): void {
    for (let i = 0; i < count; i++) this.#failures.push(status);
  }

  /** Every health query answers with `status` until called with null. Blocked queries are failed too. */
  failAlways(status: number | null): void {
    this.#failAlways = status;
    this.#wake();
  }

  /** Current check status of a registered instance, or undefined when it is not registered. */
  statusOf(service: string, id: string): CheckStatus | undefined {
    return this.#services.get(service)?.get(id)?.status;
  }

  /** Health queries blocked right now (so a test knows the client is parked on an index). */
  get blockedQueries(): number {
    return this.#waiters.size;
  }

  async close(): Promise<void> {
    for (const m of this.#services.values()) for (const r of m.values()) this.#clearTimers(r);
    for (const w of this.#waiters) w();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #fill(service: string, i: ConsulInstance): Registered {
    return {
      service,
      id: i.id,
      port: i.port,
      address: i.address ?? '',
      node: i.node ?? 'node-1',
      nodeAddress: i.nodeAddress ?? '127.0.0.1',
      tags: i.tags ?? [],
      meta: i.meta ?? {},
      weights: i.weights ?? { passing: 1, warning: 1 },
      status: i.status ?? 'passing',
    };
  }

  #clearTimers(r: Registered): void {
    if (r.ttlTimer) clearTimeout(r.ttlTimer);
    if (r.reapTimer) clearTimeout(r.reapTimer);
  }

  #bump(): void {
    this.#index++;
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  #setStatus(r: Registered, status: CheckStatus): void {
    if (r.reapTimer) clearTimeout(r.reapTimer);
    r.reapTimer = undefined;
    if (status === 'critical' && r.deregisterAfterMs !== undefined) {
      r.reapTimer = setTimeout(() => {
        this.#services.get(r.service)?.delete(r.id);
        this.#bump();
      }, r.deregisterAfterMs);
    }
    if (r.status !== status) {
      r.status = status;
      this.#bump();
    }
  }

  #entries(service: string, q: URLSearchParams): unknown[] {
    const passingOnly = q.has('passing') && q.get('passing') !== 'false' && q.get('passing') !== '0';
    const tag = q.get('tag');
    return [...(this.#services.get(service)?.values() ?? [])]
      .filter((r) => (!passingOnly || r.status === 'passing') && (tag === null || r.tags.includes(tag)))
      .map((r) => ({
        Node: { ID: `${r.node}-id`, Node: r.node, Address: r.nodeAddress, Datacenter: this.datacenter, TaggedAddresses: { lan: r.nodeAddress, wan: r.nodeAddress }, Meta: {} },
        Service: { ID: r.id, Service: r.service, Tags: r.tags, Address: r.address, Meta: r.meta, Port: r.port, Weights: { Passing: r.weights.passing, Warning: r.weights.warning } },
        Checks: [
          { Node: r.node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', ServiceID: '', ServiceName: '' },
          { Node: r.node, CheckID: `service:${r.id}`, Name: `Service '${r.service}' check`, Status: r.status, ServiceID: r.id, ServiceName: r.service },
        ],
      }));
  }

  #send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
      'x-consul-index': String(this.#index),
      'x-consul-knownleader': 'true',
      'x-consul-lastcontact': '0',
    });
    res.end(text);
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://consul');
    this.requests.push({ method: req.method ?? 'GET', path: decodeURIComponent(url.pathname), query: Object.fromEntries(url.searchParams) });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      try {
        this.#route(req.method ?? 'GET', url, body, res);
      } catch (e) {
        this.#send(res, 500, (e as Error).message);
      }
    });
  }

  #route(method: string, url: URL, body: string, res: http.ServerResponse): void {
    const health = /^\/v1\/health\/service\/([^/]+)$/.exec(url.pathname);
    if (health && method === 'GET') return this.#health(decodeURIComponent(health[1]!), url.searchParams, res);
    if (url.pathname === '/v1/agent/service/register' && method === 'PUT') return this.#register(body, res);
    const pass = /^\/v1\/agent\/check\/pass\/(.+)$/.exec(url.pathname);
    if (pass && method === 'PUT') return this.#pass(decodeURIComponent(pass[1]!), res);
    const dereg = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(url.pathname);
    if (dereg && method === 'PUT') return this.#deregister(decodeURIComponent(dereg[1]!), res);
    this.#send(res, 404, `Invalid URL path: not a recognized HTTP API endpoint (consul double): ${method} ${url.pathname}`);
  }

  #health(service: string, q: URLSearchParams, res: http.ServerResponse): void {
    const failure = this.#failures.shift() ?? this.#failAlways;
    if (failure !== null) return this.#send(res, failure, 'rpc error: injected failure (consul double)');
    const dc = q.get('dc');
    if (dc !== null && dc !== this.datacenter) return this.#send(res, 500, 'No path to datacenter');
    const minIndex = Number(q.get('index') ?? '0');
    const waitText = q.get('wait');
    const waitMs = waitText === null ? 300_000 : parseGoDuration(waitText);
    if (waitMs === undefined || !Number.isFinite(minIndex) || minIndex < 0) return this.#send(res, 400, `Invalid wait time or index: wait=${waitText} index=${q.get('index')}`);
    // Consul's blockingQuery: index 0 answers at once; otherwise hold while index <= minIndex, until wait (capped at 10m).
    if (minIndex === 0 || this.#index > minIndex) return this.#send(res, 200, this.#entries(service, q));
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      this.#waiters.delete(check);
      if (this.#failAlways !== null) return this.#send(res, this.#failAlways, 'rpc error: injected failure (consul double)');
      this.#send(res, 200, this.#entries(service, q));
    };
    const check = (): void => {
      if (this.#index > minIndex || this.#failAlways !== null || !this.#server.listening) finish();
    };
    this.#waiters.add(check);
    timer = setTimeout(finish, Math.min(waitMs, 600_000));
    res.on('close', () => {
      clearTimeout(timer);
      this.#waiters.delete(check);
    });
  }

  #register(body: string, res: http.ServerResponse): void {
    const b = JSON.parse(body) as {
      Name?: string; ID?: string; Address?: string; Port?: number; Tags?: string[]; Meta?: Record<string, string>;
      Weights?: { Passing?: number; Warning?: number };
      Check?: { TTL?: string; DeregisterCriticalServiceAfter?: string; Status?: CheckStatus };
    };
    if (!b.Name) return this.#send(res, 400, 'Missing service name');
    const id = b.ID ?? b.Name;
    const ttlMs = b.Check?.TTL !== undefined ? parseGoDuration(b.Check.TTL) : undefined;
    const deregisterAfterMs = b.Check?.DeregisterCriticalServiceAfter !== undefined ? parseGoDuration(b.Check.DeregisterCriticalServiceAfter) : undefined;
    if (b.Check?.TTL !== undefined && ttlMs === undefined) return this.#send(res, 400, `Invalid check: TTL ${b.Check.TTL}`);
    const prev = this.#services.get(b.Name)?.get(id);
    if (prev) this.#clearTimers(prev);
    const r: Registered = {
      ...this.#fill(b.Name, {
        id,
        port: b.Port ?? 0,
        address: b.Address ?? '',
        tags: b.Tags ?? [],
        meta: b.Meta ?? {},
        weights: { passing: b.Weights?.Passing ?? 1, warning: b.Weights?.Warning ?? 1 },
        // Consul: a TTL check is critical until first updated, unless an initial Status is given.
        status: b.Check ? (b.Check.Status ?? (ttlMs !== undefined ? 'critical' : 'passing')) : 'passing',
      }),
      ttlMs,
      deregisterAfterMs,
    };
    if (!this.#services.has(b.Name)) this.#services.set(b.Name, new Map());
    this.#services.get(b.Name)!.set(id, r);
    this.#bump();
    if (r.status === 'critical') this.#setStatus(r, 'critical');
    this.#send(res, 200, '');
  }

  #pass(checkId: string, res: http.ServerResponse): void {
    const id = checkId.startsWith('service:') ? checkId.slice('service:'.length) : checkId;
    const r = [...this.#services.values()].map((m) => m.get(id)).find((x) => x !== undefined);
    if (!r) return this.#send(res, 404, `Unknown check ID "${checkId}"`);
    if (r.ttlTimer) clearTimeout(r.ttlTimer);
    if (r.ttlMs !== undefined) r.ttlTimer = setTimeout(() => this.#setStatus(r, 'critical'), r.ttlMs);
    this.#setStatus(r, 'passing');
    this.#send(res, 200, '');
  }

  #deregister(id: string, res: http.ServerResponse): void {
    for (const m of this.#services.values()) {
      const r = m.get(id);
      if (r) {
        this.#clearTimers(r);
        m.delete(id);
        this.#bump();
        return this.#send(res, 200, '');
      }
    }
    this.#send(res, 404, `Unknown service ID "${id}"`);
  }
}

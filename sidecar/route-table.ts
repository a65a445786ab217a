// The logical level: which route answers a request. Built once per snapshot; a lookup is a map get
// plus a short ordered scan of that service's routes.
import type { HeaderMatcher, RouteConfig } from '../core/config/normalize.js';
import type { Handler, Headers } from '../core/handler.js';
import type { Backend } from './backend.js';

export interface CompiledRoute {
  readonly name: string;
  /** The service the caller addressed (labels metrics); the backends may be others. */
  readonly service: string;
  readonly match: RouteConfig | null; // null for a service's default route
  readonly handler: Handler;
  /** Where an Upgrade (WebSocket) request goes: the route's heaviest backend. */
  readonly upgradeBackend: Backend;
}

export class RouteTable {
  /** host (lower-case, no port) → service name */
  readonly #hosts: ReadonlyMap<string, string>;
  readonly #byService: ReadonlyMap<string, readonly CompiledRoute[]>;
  readonly #byHost: ReadonlyMap<string, readonly CompiledRoute[]>;

  constructor(hosts: Map<string, string>, byService: Map<string, CompiledRoute[]>, byHost: Map<string, CompiledRoute[]>) {
    this.#hosts = hosts;
    this.#byService = byService;
    this.#byHost = byHost;
  }

  /** The service a Host names, if any. */
  serviceFor(hostname: string): string | undefined {
    return this.#hosts.get(hostname);
  }

  /**
   * `service` is the service the request addresses (from an upstream port, or serviceFor(host));
   * `hostname` is used for host routes when no service is addressed.
   */
  resolve(service: string | undefined, hostname: string, method: string, path: string, headers: Headers): CompiledRoute | undefined {
    const routes = service !== undefined ? this.#byService.get(service) : this.#byHost.get(hostname);
    if (!routes) return undefined;
    const q = path.indexOf('?');
    const p = q === -1 ? path : path.slice(0, q);
    for (const r of routes) if (r.match === null || matches(r.match, method, p, headers)) return r;
    return undefined;
  }
}

function matches(m: RouteConfig, method: string, path: string, headers: Headers): boolean {
  if (m.methods && !m.methods.has(method)) return false;
  if (m.path !== null && path !== m.path) return false;
  if (m.pathPrefix !== null && !path.startsWith(m.pathPrefix)) return false;
  if (m.pathRegex !== null && !m.pathRegex.test(path)) return false;
  for (const h of m.headers) if (!headerMatches(h, headers[h.name])) return false;
  return true;
}

function headerMatches(h: HeaderMatcher, raw: string | string[] | undefined): boolean {
  const v = Array.isArray(raw) ? raw.join(',') : raw;
  switch (h.kind) {
    case 'present':
      return (v !== undefined) === h.present;
    case 'exact':
      return v === h.value;
    case 'prefix':
      return v !== undefined && v.startsWith(h.value);
    case 'regex':
      return v !== undefined && h.regex.test(v);
  }
}

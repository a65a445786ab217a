// Consul discovery through the `consul` client (the only module that imports it): blocking queries
// on /v1/health/service/:name, following X-Consul-Index as Consul's docs prescribe — an index that
// goes backwards resets to 0, an index below 1 is treated as 1, and requests are rate-limited so a
// misbehaving agent cannot make us spin.
// Mapping: address = Service.Address || Node.Address, port = Service.Port; weight =
// Service.Weights.Passing (Warning for an instance with a warning check; weight 0 = not routed);
// labels = Service.Meta as is, plus "tag.<tag>": "true" for every tag (a subset { "tag.canary":
// "true" } selects tagged instances, and tags never collide with meta keys).
// passingOnly (default true) asks Consul for instances whose checks all pass; with false we still
// drop "critical" ones, as Consul's own DNS interface does.
// Also the registrar sidecars use to put themselves into Consul (agent register + TTL check).
import { EventEmitter } from 'node:events';
import Consul from 'consul';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { parseDuration } from '../../core/duration.js';
import type { Logger } from '../../core/log.js';
import type { EndpointRecord } from '../../core/snapshot.js';
import { LastGoodSet } from './last-good-set.js';
import type { DiscoveryProvider, DiscoverySpec, DiscoveryUpdate } from './provider.js';

export type ConsulSpec = NonNullable<DiscoverySpec['consul']>;

export const DEFAULT_CONSUL_ADDRESS = '127.0.0.1:8500';
export const DEFAULT_WAIT_MS = 30_000;
/** At most this many health queries a second (Consul: "clients should rate limit blocking requests"). */
export const MIN_QUERY_INTERVAL_MS = 100;
export const ERROR_BACKOFF_BASE_MS = 250;
export const ERROR_BACKOFF_MAX_MS = 5_000;

/** One entry of /v1/health/service/:name, the fields we read. */
export interface ConsulHealthEntry {
  Node?: { Node?: string; Address?: string };
  Service?: { ID?: string; Service?: string; Address?: string; Port?: number; Tags?: string[] | null; Meta?: Record<string, string> | null; Weights?: { Passing?: number; Warning?: number } };
  Checks?: Array<{ Status?: string }>;
}

/** The one call the provider makes: health.service with `ctx.includeResponse` → [response, body]. */
export type ConsulHealthQuery = (opts: {
  service: string;
  passing: boolean;
  tag?: string;
  dc?: string;
  index: string;
  wait: string;
  timeout: number;
  ctx: EventEmitter;
}) => Promise<[{ headers: Record<string, string | string[] | undefined> }, unknown]>;

const hostPort = (host: string, port: number): string => (host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`);

/** Health entries → endpoints (see the mapping at the top of this file). Malformed entries are skipped. */
export function consulEntriesToEndpoints(body: unknown): EndpointRecord[] {
  if (!Array.isArray(body)) throw new Error(`Consul answered ${typeof body === 'object' ? 'a non-list' : typeof body} where a list of health entries was expected`);
  const out = new Map<string, EndpointRecord>();
  for (const e of body as ConsulHealthEntry[]) {
    const s = e?.Service;
    const host = s?.Address || e?.Node?.Address;
    if (!s || !host || typeof s.Port !== 'number' || s.Port < 1 || s.Port > 65535) continue;
    const statuses = (e.Checks ?? []).map((c) => c?.Status);
    if (statuses.includes('critical')) continue;
    const weight = statuses.includes('warning') ? (s.Weights?.Warning ?? 1) : (s.Weights?.Passing ?? 1);
    if (!(weight > 0)) continue;
    const labels: Record<string, string> = { ...(s.Meta ?? {}) };
    for (const t of s.Tags ?? []) labels[`tag.${t}`] = 'true';
    const address = hostPort(host, s.Port);
    if (!out.has(address)) out.set(address, { address, weight: Math.round(weight), labels, source: 'consul' });
  }
  return [...out.values()];
}

/**
 * "host:port" or "http(s)://host:port" → the client's options. An ACL token is taken from
 * CONSUL_HTTP_TOKEN, as Consul's own tools do (a token never belongs in the mesh config).
 */
export function consulClientOptions(address: string, env: NodeJS.ProcessEnv = process.env): { host: string; port: number; secure: boolean; defaults?: { token: string } } {
  const m = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/\s[\]]+):(\d{1,5})\/?$/.exec(address);
  if (!m) throw new Error(`bad Consul address "${address}": expected host:port or http(s)://host:port`);
  const token = env.CONSUL_HTTP_TOKEN?.trim();
  return { host: m[2]!, port: Number(m[3]), secure: m[1] === 'https', ...(token ? { defaults: { token } } : {}) };
}

/** The agent to ask when the config names none: CONSUL_HTTP_ADDR (Consul's convention), else 127.0.0.1:8500. */
export const defaultConsulAddress = (env: NodeJS.ProcessEnv = process.env): string => env.CONSUL_HTTP_ADDR?.trim() || DEFAULT_CONSUL_ADDRESS;

export function consulHealthQuery(address: string): { query: ConsulHealthQuery; close(): void } {
  const client = new Consul(consulClientOptions(address));
  return {
    query: (opts) => (client.health.service as unknown as ConsulHealthQuery)(opts),
    close: () => client.destroy(),
  };
}

export class ConsulProvider implements DiscoveryProvider {
  readonly source = 'consul' as const;
  #service: string;
  #spec: ConsulSpec;
  #o: { log: Logger; clock: Clock; emptyGraceMs: number; query?: ConsulHealthQuery };
  #waitMs: number;
  #set: LastGoodSet | null = null;
  #stopped = false;
  #ctx: EventEmitter | null = null;
  #sleep: { timer: TimerHandle; wake: () => void } | null = null;
  #close: (() => void) | null = null;
  #loop: Promise<void> | null = null;

  constructor(service: string, spec: ConsulSpec, o: { log: Logger; clock: Clock; emptyGraceMs: number; query?: ConsulHealthQuery }) {
    this.#service = service;
    this.#spec = spec;
    this.#o = o;
    this.#waitMs = spec.wait === undefined ? DEFAULT_WAIT_MS : Math.min(600_000, parseDuration(spec.wait) ?? DEFAULT_WAIT_MS);
  }

  start(onUpdate: (u: DiscoveryUpdate) => void): void {
    this.#set = new LastGoodSet({ service: this.#service, source: 'consul', clock: this.#o.clock, emptyGraceMs: this.#o.emptyGraceMs, log: this.#o.log, onUpdate });
    let query = this.#o.query;
    if (!query) {
      try {
        const c = consulHealthQuery(this.#spec.address ?? defaultConsulAddress());
        query = c.query;
        this.#close = c.close;
      } catch (e) {
        this.#set.error(e);
        return;
      }
    }
    this.#loop = this.#run(query);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#ctx?.emit('cancel');
    this.#wake();
    this.#set?.stop();
    await this.#loop;
    this.#close?.();
  }

  #wake(): void {
    if (this.#sleep) {
      this.#o.clock.clearTimeout(this.#sleep.timer);
      this.#sleep.wake();
      this.#sleep = null;
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#o.clock.setTimeout(() => {
        this.#sleep = null;
        resolve();
      }, ms);
      this.#sleep = { timer, wake: resolve };
    });
  }

  async #run(query: ConsulHealthQuery): Promise<void> {
    const name = this.#spec.service ?? this.#service;
    let index = 0;
    let failures = 0;
    while (!this.#stopped) {
      const started = this.#o.clock.now();
      const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
      this.#ctx = ctx;
      try {
        const [res, body] = await query({
          service: name,
          passing: this.#spec.passingOnly ?? true,
          ...(this.#spec.tag !== undefined ? { tag: this.#spec.tag } : {}),
          ...(this.#spec.dc !== undefined ? { dc: this.#spec.dc } : {}),
          index: String(index),
          wait: `${this.#waitMs}ms`,
          // Consul may hold a query up to wait + wait/16 (its jitter); past that the agent is stuck.
          timeout: this.#waitMs + Math.ceil(this.#waitMs / 16) + 2_000,
          ctx,
        });
        if (this.#stopped) return;
        const header = res.headers['x-consul-index'];
        const newIndex = Number(Array.isArray(header) ? header[0] : header);
        if (header === undefined || !Number.isFinite(newIndex)) throw new Error('Consul answered without a valid X-Consul-Index header');
        const endpoints = consulEntriesToEndpoints(body);
        failures = 0;
        if (newIndex < index) {
          this.#o.log.warn({ service: this.#service, index, newIndex }, 'Consul index went backwards; resetting the blocking query');
          index = 0;
        } else {
          index = Math.max(1, newIndex);
        }
        this.#set!.answer(endpoints);
        const elapsed = this.#o.clock.now() - started;
        if (elapsed < MIN_QUERY_INTERVAL_MS) await this.#pause(MIN_QUERY_INTERVAL_MS - elapsed);
      } catch (e) {
        if (this.#stopped) return;
        const status = (e as { statusCode?: number }).statusCode;
        this.#set!.error(`Consul health/service/${name}: ${status !== undefined ? `HTTP ${status}: ` : ''}${(e as Error).message}`);
        failures++;
        await this.#pause(Math.min(ERROR_BACKOFF_MAX_MS, ERROR_BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 10)));
      }
    }
  }
}

export interface ConsulInstanceRegistration {
  id: string;
  /** host of the instance as peers reach it (its sidecar's inbound listener). */
  host: string;
  port: number;
  tags?: string[];
  meta?: Record<string, string>;
}

export interface Registration {
  stop(): Promise<void>;
}

/**
 * Registers an instance with the local Consul agent under a TTL check and keeps passing the check
 * every ttl/3; if this process dies the check goes critical (and the instance leaves passing
 * queries at once), and Consul deregisters it after `deregisterAfterSeconds`. stop() deregisters.
 */
export async function registerInConsul(
  agentAddress: string,
  service: string,
  instance: ConsulInstanceRegistration,
  ttlSeconds: number,
  opts: { log?: Logger; clock?: Clock; deregisterAfterSeconds?: number } = {},
): Promise<Registration> {
  const clock = opts.clock ?? systemClock;
  const client = new Consul(consulClientOptions(agentAddress));
  await client.agent.service.register({
    name: service,
    id: instance.id,
    address: instance.host,
    port: instance.port,
    tags: instance.tags ?? [],
    meta: instance.meta ?? {},
    // The client's typings demand name and timeout on every check; for a TTL check it sends no Timeout.
    check: { name: `${service} TTL`, timeout: `${ttlSeconds}s`, ttl: `${ttlSeconds}s`, deregistercriticalserviceafter: `${opts.deregisterAfterSeconds ?? 60}s`, status: 'passing' },
  });
  let timer: TimerHandle | null = null;
  let stopped = false;
  const beat = (): void => {
    timer = clock.setTimeout(() => {
      client.agent.check
        .pass({ id: `service:${instance.id}` })
        .catch((e: Error) => opts.log?.warn({ service, id: instance.id, err: e.message }, 'Consul TTL check update failed'))
        .finally(() => {
          if (!stopped) beat();
        });
    }, (ttlSeconds * 1000) / 3);
  };
  beat();
  return {
    async stop() {
      stopped = true;
      if (timer !== null) clock.clearTimeout(timer);
      try {
        await client.agent.service.deregister({ id: instance.id });
      } finally {
        client.destroy();
      }
    },
  };
}

// DNS discovery: SRV (RFC 2782) or A/AAAA plus a configured port, re-resolved at
// min(refresh, record TTL). Only the lowest-priority SRV group is used (the others are fallbacks
// a client takes only when that whole group is unreachable; our balancer's outlier ejection is
// the finer tool); SRV weight becomes the endpoint weight (0 → 1, our weights start at 1).
// Node's resolver exposes no TTL for SRV answers (resolveSrv drops it, resolveAny gives none for
// SRV), so the re-resolve interval is the smallest TTL of the targets' A/AAAA records, bounded
// by `refresh` and floored at MIN_REFRESH_MS.
import dns from 'node:dns';
import net from 'node:net';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { parseDuration } from '../../core/duration.js';
import type { Logger } from '../../core/log.js';
import type { EndpointRecord } from '../../core/snapshot.js';
import { LastGoodSet } from './last-good-set.js';
import type { DiscoveryProvider, DiscoverySpec, DiscoveryUpdate } from './provider.js';

export type DnsSpec = NonNullable<DiscoverySpec['dns']>;

/** The part of dns.promises.Resolver this provider uses (a fake in unit tests, the real one otherwise). */
export interface DnsResolver {
  resolveSrv(name: string): Promise<dns.SrvRecord[]>;
  resolve4(name: string, opts: { ttl: true }): Promise<dns.RecordWithTtl[]>;
  resolve6(name: string, opts: { ttl: true }): Promise<dns.RecordWithTtl[]>;
  cancel(): void;
}

export const DEFAULT_REFRESH_MS = 30_000;
/** A TTL of 0 or 1 s must not turn into a busy loop. */
export const MIN_REFRESH_MS = 1_000;
/** After a failure, retry sooner than `refresh` (doubling from this), so an outage ends quickly. */
export const ERROR_RETRY_MS = 500;

/** Resolver timeouts: a dead server should be noticed in about a second, not c-ares' default 5 s × 4. */
const QUERY_TIMEOUT_MS = 500;
const QUERY_TRIES = 2;

/** No such name / no such record: an authoritative "nothing", unlike a timeout or a refused query. */
const isNoData = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === dns.NOTFOUND || code === dns.NODATA;
};

export interface DnsAnswer {
  endpoints: EndpointRecord[];
  /** Smallest TTL (seconds) among the records used, or undefined if none carried one. */
  ttlSeconds: number | undefined;
}

const hostPort = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

async function addressesOf(resolver: DnsResolver, name: string): Promise<dns.RecordWithTtl[]> {
  if (net.isIP(name)) return [{ address: name, ttl: Number.POSITIVE_INFINITY }];
  const settle = (p: Promise<dns.RecordWithTtl[]>): Promise<dns.RecordWithTtl[]> =>
    p.catch((e: unknown) => {
      if (isNoData(e)) return [];
      throw e;
    });
  const [v4, v6] = await Promise.all([settle(resolver.resolve4(name, { ttl: true })), settle(resolver.resolve6(name, { ttl: true }))]);
  return [...v4, ...v6];
}

function minTtl(ttls: number[]): number | undefined {
  const finite = ttls.filter((t) => Number.isFinite(t));
  return finite.length === 0 ? undefined : Math.min(...finite);
}

/** One resolution of the spec: the complete endpoint set (possibly empty) or a thrown transport error. */
export async function resolveDnsSpec(resolver: DnsResolver, spec: DnsSpec): Promise<DnsAnswer> {
  const byAddress = new Map<string, EndpointRecord>();
  const ttls: number[] = [];
  if (spec.srv) {
    let records: dns.SrvRecord[];
    try {
      records = await resolver.resolveSrv(spec.srv);
    } catch (e) {
      if (isNoData(e)) return { endpoints: [], ttlSeconds: undefined };
      throw e;
    }
    if (records.length === 0) return { endpoints: [], ttlSeconds: undefined };
    const lowest = Math.min(...records.map((r) => r.priority));
    const group = records.filter((r) => r.priority === lowest);
    const resolved = await Promise.all(group.map(async (r) => ({ r, addrs: await addressesOf(resolver, r.name) })));
    for (const { r, addrs } of resolved) {
      for (const a of addrs) {
        ttls.push(a.ttl);
        const address = hostPort(a.address, r.port);
        if (!byAddress.has(address)) byAddress.set(address, { address, weight: Math.max(1, r.weight), labels: {}, source: 'dns' });
      }
    }
  } else if (spec.host && spec.port !== undefined) {
    for (const a of await addressesOf(resolver, spec.host)) {
      ttls.push(a.ttl);
      const address = hostPort(a.address, spec.port);
      if (!byAddress.has(address)) byAddress.set(address, { address, weight: 1, labels: {}, source: 'dns' });
    }
  }
  return { endpoints: [...byAddress.values()], ttlSeconds: minTtl(ttls) };
}

export function systemResolver(servers: readonly string[] | undefined): DnsResolver {
  const r = new dns.promises.Resolver({ timeout: QUERY_TIMEOUT_MS, tries: QUERY_TRIES });
  // "127.0.0.1:15353" and "[::1]:53" are accepted by setServers as they are.
  if (servers && servers.length > 0) r.setServers([...servers]);
  return r;
}

export class DnsProvider implements DiscoveryProvider {
  readonly source = 'dns' as const;
  #service: string;
  #spec: DnsSpec;
  #o: { log: Logger; clock: Clock; emptyGraceMs: number; resolver?: DnsResolver };
  #resolver: DnsResolver | null = null;
  #set: LastGoodSet | null = null;
  #timer: TimerHandle | null = null;
  #stopped = false;
  #failures = 0;
  #empties = 0;
  #refreshMs: number;

  constructor(service: string, spec: DnsSpec, o: { log: Logger; clock: Clock; emptyGraceMs: number; resolver?: DnsResolver }) {
    this.#service = service;
    this.#spec = spec;
    this.#o = o;
    this.#refreshMs = Math.max(MIN_REFRESH_MS, spec.refresh === undefined ? DEFAULT_REFRESH_MS : (parseDuration(spec.refresh) ?? DEFAULT_REFRESH_MS));
  }

  start(onUpdate: (u: DiscoveryUpdate) => void): void {
    this.#set = new LastGoodSet({ service: this.#service, source: 'dns', clock: this.#o.clock, emptyGraceMs: this.#o.emptyGraceMs, log: this.#o.log, onUpdate });
    try {
      this.#resolver = this.#o.resolver ?? systemResolver(this.#spec.servers);
    } catch (e) {
      // Validation refuses such servers; a provider built around it still must not throw.
      this.#set.error(`DNS servers ${JSON.stringify(this.#spec.servers)}: ${(e as Error).message}`);
      return;
    }
    void this.#tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#set?.stop();
    this.#resolver?.cancel();
  }

  async #tick(): Promise<void> {
    this.#timer = null;
    let nextMs: number;
    try {
      const answer = await resolveDnsSpec(this.#resolver!, this.#spec);
      if (this.#stopped) return;
      this.#failures = 0;
      this.#set!.answer(answer.endpoints);
      if (answer.endpoints.length === 0) {
        // A negative answer carries no TTL we can read: look again soon (backing off to refresh), so
        // records that come back within the empty grace are seen before the set is given up.
        nextMs = Math.min(this.#refreshMs, MIN_REFRESH_MS * 2 ** Math.min(this.#empties++, 10));
      } else {
        this.#empties = 0;
        const ttlMs = answer.ttlSeconds === undefined ? this.#refreshMs : answer.ttlSeconds * 1000;
        nextMs = Math.max(MIN_REFRESH_MS, Math.min(this.#refreshMs, ttlMs));
      }
    } catch (e) {
      if (this.#stopped) return;
      const code = (e as NodeJS.ErrnoException).code;
      this.#set!.error(`DNS ${this.#spec.srv ? `SRV ${this.#spec.srv}` : `A/AAAA ${this.#spec.host}`}: ${code ?? (e as Error).message}`);
      nextMs = Math.min(this.#refreshMs, ERROR_RETRY_MS * 2 ** Math.min(this.#failures, 10));
      this.#failures++;
    }
    this.#timer = this.#o.clock.setTimeout(() => void this.#tick(), nextMs);
  }
}

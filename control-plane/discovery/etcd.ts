// etcd discovery: instances live under a key prefix per service,
//   /meshlet/instances/<service>/<id>  →  {"address":"host:port","weight":1,"labels":{…}}
// usually bound to a lease so they vanish when their owner dies. The provider reads the prefix once
// and then WATCHES from the revision it read (no polling, no missed or replayed change). A broken
// watch marks the set stale until the stream is back; a cancelled watch (e.g. compaction) starts
// over with a fresh read. Keys whose value is not a valid instance are skipped with a warning.
// Also: the etcd client options every meshlet etcd user shares, and the registrar sidecars use to
// put themselves into etcd under a lease.
import { Etcd3, type IKeyValue, type IOptions, type Lease, type Watcher } from 'etcd3';
import { z } from 'zod';
import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { parseHostPort } from '../../core/address.js';
import type { Logger } from '../../core/log.js';
import type { EndpointRecord } from '../../core/snapshot.js';
import { LastGoodSet } from './last-good-set.js';
import type { DiscoveryProvider, DiscoverySpec, DiscoveryUpdate } from './provider.js';

export type EtcdSpec = NonNullable<DiscoverySpec['etcd']>;

export const INSTANCES_PREFIX = '/meshlet/instances/';
export const instancesPrefix = (service: string): string => `${INSTANCES_PREFIX}${service}/`;

/** Connect and per-call deadlines of ~1 s: with the client's defaults a write after a leader loss took ~6 s, with these ~1.1 s. */
export const ETCD_DIAL_TIMEOUT_MS = 1_000;
export const ETCD_CALL_DEADLINE_MS = 1_000;
export const ERROR_RETRY_BASE_MS = 250;
export const ERROR_RETRY_MAX_MS = 5_000;
export const WATCH_CREATE_TIMEOUT_MS = 5_000;

export function etcdClientOptions(endpoints: readonly string[]): IOptions {
  return {
    hosts: [...endpoints],
    dialTimeout: ETCD_DIAL_TIMEOUT_MS,
    // Streams (watch, lease keepalive) live for long; only unary calls get a deadline.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + ETCD_CALL_DEADLINE_MS }),
  };
}

export function createEtcdClient(endpoints: readonly string[]): Etcd3 {
  return new Etcd3(etcdClientOptions(endpoints));
}

export const etcdInstanceSchema = z.strictObject({
  address: z.string().refine((a) => parseHostPort(a) !== undefined && !a.startsWith(':'), 'expected "host:port"'),
  weight: z.int().min(1).max(10_000).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});
export type EtcdInstance = z.infer<typeof etcdInstanceSchema>;

/** Parses one instance value; returns an error message instead of throwing. */
export function parseEtcdInstance(value: string): { ok: true; endpoint: EndpointRecord } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
  const r = etcdInstanceSchema.safeParse(json);
  if (!r.success) return { ok: false, error: r.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ') };
  return { ok: true, endpoint: { address: r.data.address, weight: r.data.weight ?? 1, labels: r.data.labels ?? {}, source: 'etcd' } };
}

export class EtcdProvider implements DiscoveryProvider {
  readonly source = 'etcd' as const;
  #service: string;
  #prefix: string;
  #o: { log: Logger; clock: Clock; emptyGraceMs: number; endpoints: readonly string[]; client?: Etcd3 };
  #client: Etcd3 | null = null;
  #ownsClient = false;
  #set: LastGoodSet | null = null;
  #instances = new Map<string, EndpointRecord>();
  #watcher: Watcher | null = null;
  #retry: TimerHandle | null = null;
  #failures = 0;
  #stopped = false;
  #generation = 0;

  constructor(service: string, spec: EtcdSpec, o: { log: Logger; clock: Clock; emptyGraceMs: number; endpoints: readonly string[]; client?: Etcd3 }) {
    this.#service = service;
    this.#prefix = spec.prefix ?? instancesPrefix(service);
    this.#o = o;
  }

  start(onUpdate: (u: DiscoveryUpdate) => void): void {
    this.#set = new LastGoodSet({ service: this.#service, source: 'etcd', clock: this.#o.clock, emptyGraceMs: this.#o.emptyGraceMs, log: this.#o.log, onUpdate });
    if (this.#o.client) this.#client = this.#o.client;
    else if (this.#o.endpoints.length > 0) {
      this.#client = createEtcdClient(this.#o.endpoints);
      this.#ownsClient = true;
    } else {
      this.#set.error('no etcd endpoints: set discovery.etcd.endpoints, or run the control plane with --store etcd --etcd-endpoints');
      return;
    }
    void this.#sync();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#generation++;
    if (this.#retry !== null) this.#o.clock.clearTimeout(this.#retry);
    this.#set?.stop();
    const w = this.#watcher;
    this.#watcher = null;
    await w?.cancel().catch(() => undefined);
    if (this.#ownsClient) this.#client?.close();
  }

  #list(): EndpointRecord[] {
    return [...this.#instances.values()];
  }

  #apply(kv: IKeyValue): void {
    const key = kv.key.toString();
    const parsed = parseEtcdInstance(kv.value.toString());
    if (parsed.ok) this.#instances.set(key, parsed.endpoint);
    else {
      this.#instances.delete(key);
      this.#o.log.warn({ service: this.#service, key, err: parsed.error }, 'skipping an etcd instance key whose value is not an instance');
    }
  }

  /** Read the prefix, publish it, then watch from the next revision. Any failure retries from scratch. */
  async #sync(): Promise<void> {
    const gen = ++this.#generation;
    const client = this.#client!;
    let creating: Promise<Watcher> | null = null;
    let established = false;
    try {
      const res = await client.getAll().prefix(this.#prefix).exec();
      if (gen !== this.#generation) return;
      this.#instances.clear();
      for (const kv of res.kvs) this.#apply(kv);
      this.#set!.answer(this.#list());
      creating = client.watch().prefix(this.#prefix).startRevision(String(BigInt(res.header.revision) + 1n)).create();
      // The client retries a watch stream forever; if it is not up soon, say so (stale) and start over.
      const watcher = await this.#within(creating, WATCH_CREATE_TIMEOUT_MS, 'etcd watch not established');
      established = true;
      if (gen !== this.#generation) {
        await watcher.cancel().catch(() => undefined);
        return;
      }
      this.#watcher = watcher;
      this.#failures = 0;
      let broken = false;
      watcher.on('data', (r) => {
        for (const ev of r.events) {
          if (ev.type === 'Put') this.#apply(ev.kv);
          else this.#instances.delete(ev.kv.key.toString());
        }
        this.#set!.answer(this.#list());
      });
      watcher.on('disconnected', (e: Error) => {
        broken = true;
        this.#set!.error(`etcd watch on ${this.#prefix} disconnected: ${e.message}`);
      });
      // The client re-creates the watch from the last revision it saw, so the set is complete again.
      watcher.on('connected', () => {
        if (broken) this.#set!.answer(this.#list());
        broken = false;
      });
      watcher.on('error', (e: Error) => this.#fail(gen, e));
    } catch (e) {
      // A watch we gave up on is cancelled whenever it does come up.
      if (creating !== null && !established) creating.then((w) => w.cancel()).catch(() => undefined);
      this.#fail(gen, e as Error);
    }
  }

  /** `p`, or a rejection after `ms` on the injected clock. */
  #within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: TimerHandle | null = null;
    const late = new Promise<never>((_, reject) => {
      timer = this.#o.clock.setTimeout(() => reject(new Error(`${what} within ${ms}ms`)), ms);
    });
    return Promise.race([p, late]).finally(() => {
      if (timer !== null) this.#o.clock.clearTimeout(timer);
    });
  }

  #fail(gen: number, e: Error): void {
    if (gen !== this.#generation || this.#stopped) return;
    this.#set!.error(`etcd ${this.#prefix}: ${e.message}`);
    const w = this.#watcher;
    this.#watcher = null;
    void w?.cancel().catch(() => undefined);
    const delay = Math.min(ERROR_RETRY_MAX_MS, ERROR_RETRY_BASE_MS * 2 ** Math.min(this.#failures++, 10));
    this.#retry = this.#o.clock.setTimeout(() => {
      this.#retry = null;
      void this.#sync();
    }, delay);
  }
}

export interface EtcdRegistration {
  /** The lease id (decimal string) the key is bound to. */
  leaseId(): Promise<string>;
  /** Revokes the lease: the key goes at once. */
  stop(): Promise<void>;
}

/**
 * Puts `/meshlet/instances/<service>/<id>` under a lease of `ttlSeconds`, kept alive by the client
 * (ttl/3 heartbeats). If the process dies the key vanishes after the TTL; if the lease is lost
 * (etcd unreachable longer than the TTL) a new lease is granted and the key written again.
 */
export async function registerInEtcd(
  client: Etcd3,
  service: string,
  instance: { id: string; address: string; weight?: number; labels?: Record<string, string> },
  ttlSeconds: number,
  opts: { log?: Logger; prefix?: string; clock?: Clock } = {},
): Promise<EtcdRegistration> {
  const clock = opts.clock ?? systemClock;
  const key = `${opts.prefix ?? instancesPrefix(service)}${instance.id}`;
  const value = JSON.stringify(etcdInstanceSchema.parse({ address: instance.address, weight: instance.weight, labels: instance.labels }));
  let stopped = false;
  let lease: Lease;
  const grant = async (): Promise<void> => {
    lease = client.lease(ttlSeconds, { autoKeepAlive: true });
    lease.on('lost', (e: Error) => {
      if (stopped) return;
      opts.log?.warn({ service, key, err: e.message }, 'etcd lease lost; registering again');
      const retry = (): void => {
        if (stopped) return;
        grant().catch((err: Error) => {
          opts.log?.warn({ service, key, err: err.message }, 'etcd re-registration failed; retrying');
          clock.setTimeout(retry, 1000).unref?.();
        });
      };
      retry();
    });
    await lease.put(key).value(value).exec();
  };
  await grant();
  return {
    leaseId: () => lease.grant(),
    async stop() {
      stopped = true;
      await lease.revoke().catch(() => undefined);
    },
  };
}

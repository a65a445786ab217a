// Runs the discovery providers the mesh config asks for: update(config) starts providers for new
// or changed discovery blocks and stops those no longer wanted (calls are serialized). current() is
// the merged endpoint set per service (what generate() takes); status() says per service and
// source how discovery is doing; onChange fires with the services whose set (or staleness) really
// changed — a service whose discovery was removed is reported once with no endpoints.
import type { Etcd3 } from 'etcd3';
import type { MeshConfigInput } from '../../core/config/schema.js';
import type { Logger } from '../../core/log.js';
import { canonicalJson, type EndpointRecord } from '../../core/snapshot.js';
import { createEtcdClient } from './etcd.js';
import { createProvider, type DiscoveryProvider, type DiscoverySpec, type DiscoveryUpdate, type ProviderOptions } from './provider.js';

export interface DiscoverySourceStatus {
  source: DiscoveryProvider['source'];
  endpoints: number;
  stale: boolean;
  error?: string;
  /** Wall-clock ms of the last good answer; 0 = none yet. */
  updatedAt: number;
}

interface Running {
  specKey: string;
  providers: Array<{ provider: DiscoveryProvider; last: DiscoveryUpdate | null }>;
}

export interface DiscoveryHubOptions extends ProviderOptions {
  /** Replaceable for tests; defaults to createProvider. */
  createProvider?: typeof createProvider;
}

export class DiscoveryHub {
  #o: DiscoveryHubOptions;
  #running = new Map<string, Running>();
  #current = new Map<string, EndpointRecord[]>();
  #currentKey = new Map<string, string>();
  #listeners = new Set<(services: readonly string[]) => void>();
  #updates: Promise<void> = Promise.resolve();
  #log: Logger;

  #etcdClients = new Map<string, Etcd3>();

  constructor(o: DiscoveryHubOptions) {
    this.#o = {
      ...o,
      etcdClient:
        o.etcdClient ??
        ((endpoints) => {
          const key = [...endpoints].sort().join(',');
          let c = this.#etcdClients.get(key);
          if (!c) this.#etcdClients.set(key, (c = createEtcdClient(endpoints)));
          return c;
        }),
    };
    this.#log = o.log;
  }

  /** Starts/stops providers so they match the config's discovery blocks (none when undefined). Unchanged blocks keep running. */
  update(config: Pick<MeshConfigInput, 'services'> | undefined): Promise<void> {
    const run = this.#updates.then(() => this.#update(config));
    this.#updates = run.catch((e: Error) => this.#log.error({ err: e.message }, 'discovery update failed'));
    return run;
  }

  async #update(config: Pick<MeshConfigInput, 'services'> | undefined): Promise<void> {
    const wanted = new Map<string, DiscoverySpec>();
    for (const [name, s] of Object.entries(config?.services ?? {})) if (s.discovery && (s.discovery.dns || s.discovery.consul || s.discovery.etcd)) wanted.set(name, s.discovery);
    const stopping: Promise<void>[] = [];
    const changed: string[] = [];
    for (const [name, r] of this.#running) {
      const spec = wanted.get(name);
      if (spec === undefined || canonicalJson(spec) !== r.specKey) {
        this.#running.delete(name);
        stopping.push(...r.providers.map((p) => p.provider.stop()));
        // A changed block keeps its last set until the new providers answer; a removed one goes now.
        if (spec === undefined && this.#recompute(name)) changed.push(name);
      }
    }
    await Promise.all(stopping);
    for (const [name, spec] of wanted) {
      if (this.#running.has(name)) continue;
      const make = this.#o.createProvider ?? createProvider;
      let r: Running;
      try {
        r = { specKey: canonicalJson(spec), providers: make(name, spec, this.#o).map((provider) => ({ provider, last: null })) };
      } catch (e) {
        // Config validation should have refused it; one bad block must not stop the others.
        this.#log.error({ service: name, err: (e as Error).message }, 'discovery could not start for this service');
        continue;
      }
      this.#running.set(name, r);
      this.#log.info({ service: name, sources: r.providers.map((p) => p.provider.source) }, 'discovery started');
      for (const p of r.providers) {
        try {
          p.provider.start((u) => {
            if (this.#running.get(name) !== r) return; // a late update from a provider being replaced
            p.last = u;
            if (this.#recompute(name)) this.#emit([name]);
          });
        } catch (e) {
          this.#log.error({ service: name, source: p.provider.source, err: (e as Error).message }, 'a discovery provider failed to start');
        }
      }
    }
    if (changed.length > 0) this.#emit(changed);
  }

  /** Endpoints discovered per service (merged over its providers; stale ones carry stale: true). */
  current(): Map<string, EndpointRecord[]> {
    return new Map(this.#current);
  }

  /** Per service, per source: how discovery is doing. */
  status(): Map<string, DiscoverySourceStatus[]> {
    const out = new Map<string, DiscoverySourceStatus[]>();
    for (const [name, r] of this.#running) {
      out.set(
        name,
        r.providers.map(({ provider, last }) => ({
          source: provider.source,
          endpoints: last?.endpoints.length ?? 0,
          // Not answered yet counts as stale: nothing from this source is known to be current.
          stale: last === null ? true : last.stale,
          ...(last === null ? { error: 'no answer yet' } : last.error !== undefined ? { error: last.error } : {}),
          updatedAt: last?.updatedAt ?? 0,
        })),
      );
    }
    return out;
  }

  /** Calls `cb` with the services whose discovered set changed. Returns the unsubscribe function. */
  onChange(cb: (services: readonly string[]) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  async stop(): Promise<void> {
    await this.#updates;
    const all = [...this.#running.values()].flatMap((r) => r.providers.map((p) => p.provider.stop()));
    this.#running.clear();
    this.#current.clear();
    this.#currentKey.clear();
    await Promise.all(all);
    for (const c of this.#etcdClients.values()) c.close();
    this.#etcdClients.clear();
  }

  /** Merges a service's providers' sets (first provider wins on a duplicate address). True if it changed. */
  #recompute(name: string): boolean {
    const r = this.#running.get(name);
    if (r !== undefined && r.providers.every((p) => p.last === null)) return false;
    const merged = new Map<string, EndpointRecord>();
    for (const p of r?.providers ?? []) for (const e of p.last?.endpoints ?? []) if (!merged.has(e.address)) merged.set(e.address, e);
    const list = [...merged.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    if (r === undefined) {
      this.#currentKey.delete(name);
      return this.#current.delete(name);
    }
    const key = canonicalJson(list);
    if (this.#currentKey.get(name) === key) return false;
    this.#current.set(name, list);
    this.#currentKey.set(name, key);
    return true;
  }

  #emit(services: readonly string[]): void {
    for (const cb of [...this.#listeners]) {
      try {
        cb(services);
      } catch (e) {
        this.#log.error({ err: (e as Error).message }, 'discovery change listener failed');
      }
    }
  }
}

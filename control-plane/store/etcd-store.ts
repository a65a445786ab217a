// The control plane's store in etcd, so several replicas serve one mesh (--store etcd). Layout under
// the root prefix (default /meshlet/cp/):
//   config/current            → "N", the current version number (the CAS anchor)
//   config/versions/<N:10>    → JSON ConfigVersion (+ writeId); the newest `historyLimit` are kept
//   instances/<id>            → JSON InstanceRecord, bound to an etcd lease of the instance's TTL
// A write is one transaction: "if current == N then put versions/N+1, put current = N+1, delete
// versions older than the history limit". Instances live under leases, so they vanish when their
// sidecar stops heartbeating, whichever replica it talked to, and whether or not that replica is
// alive. Every replica watches the whole prefix and emits StoreEvents for every change, its own
// included, so a write through any replica reaches every replica's sidecars.
// Reads go to etcd (linearizable), never to a local cache: read-your-writes across replicas.
// Calls that fail for transport reasons are retried for up to RETRY_FOR_MS; a write whose outcome
// is unknown (timed out after being sent) is resolved by reading back its writeId, so a write is
// never reported failed when it landed, nor stored twice by our own retry.
import { randomUUID } from 'node:crypto';
import { Range, type Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { systemClock, type Clock } from '../../core/clock.js';
import { isMeshError, meshError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/log.js';
import { createEtcdClient } from '../discovery/etcd.js';
import type { ConfigVersion, ConfigWrite, InstanceRecord, InstanceRegistration, Store, StoreEvent } from './store.js';

export interface EtcdStoreOptions {
  endpoints: string[];
  /** Root key prefix (default /meshlet/cp/); replicas of one mesh share it. */
  prefix?: string;
  historyLimit?: number;
  log?: Logger;
  clock?: Clock;
  wallClock?: () => Date;
  /** For tests: an existing client (not closed by close()). */
  client?: Etcd3;
}

export const DEFAULT_PREFIX = '/meshlet/cp/';
/** How long one store call keeps retrying transport failures (an etcd leader election takes ~0.2–1 s). */
export const RETRY_FOR_MS = 5_000;
const RETRY_PAUSE_MS = 100;
/** Versions are zero-padded so key order is version order. */
const pad = (v: number): string => String(v).padStart(10, '0');

interface StoredVersion extends ConfigVersion {
  writeId: string;
}

/** etcd3 marks transport-level errors recoverable; deadline exceeded and unavailable are worth a retry. */
function isTransient(e: unknown): boolean {
  if (isMeshError(e)) return false;
  const name = (e as Error | undefined)?.constructor?.name ?? '';
  return /Unavailable|DeadlineExceeded|Cancelled|Unknown|Internal|WatchStreamEnded|ClientRuntime|GRPCGeneric|BrokenCircuit/.test(name) || /deadline|unavailable|connect|ECONNREFUSED|No connection/i.test((e as Error)?.message ?? '');
}

export class EtcdStore implements Store {
  #client: Etcd3;
  #ownsClient: boolean;
  #prefix: string;
  #limit: number;
  #log: Logger;
  #clock: Clock;
  #wall: () => Date;
  #listeners = new Set<(e: StoreEvent) => void>();
  #watcher: Watcher | null = null;
  /** Instance values without lastHeartbeatAt, by key: a heartbeat rewrites the value but changes no endpoint. */
  #instanceShape = new Map<string, string>();
  /**
   * The newest config version announced to listeners. A replica announces its own writes at once
   * (its sidecars need not wait for the watch to echo them) and the watch's echo is then not news.
   */
  #announced = 0;
  #closed = false;

  private constructor(o: EtcdStoreOptions) {
    this.#client = o.client ?? createEtcdClient(o.endpoints);
    this.#ownsClient = o.client === undefined;
    this.#prefix = o.prefix ?? DEFAULT_PREFIX;
    this.#limit = o.historyLimit ?? 50;
    this.#log = o.log ?? silentLogger;
    this.#clock = o.clock ?? systemClock;
    this.#wall = o.wallClock ?? (() => new Date());
  }

  /** Connects, reads the current state and starts watching. Fails with UNAVAILABLE when etcd cannot be reached. */
  static async open(o: EtcdStoreOptions): Promise<EtcdStore> {
    if (!Number.isInteger(o.historyLimit ?? 50) || (o.historyLimit ?? 50) < 1) throw meshError('BAD_REQUEST', `history limit must be a whole number ≥ 1, got ${o.historyLimit}`);
    if (o.client === undefined && o.endpoints.length === 0) throw meshError('BAD_REQUEST', 'the etcd store needs at least one etcd endpoint');
    const store = new EtcdStore(o);
    try {
      await store.#startWatch();
      store.#announced = await store.#currentVersion(); // what is there at start is not news
    } catch (e) {
      await store.close();
      if (o.client === undefined && isMeshError(e, 'UNAVAILABLE')) throw meshError('UNAVAILABLE', `cannot reach etcd at ${o.endpoints.join(', ')}: ${e.message}`, { endpoints: o.endpoints }, e);
      throw e;
    }
    return store;
  }

  get #currentKey(): string {
    return `${this.#prefix}config/current`;
  }
  #versionKey(v: number): string {
    return `${this.#prefix}config/versions/${pad(v)}`;
  }
  get #versionsPrefix(): string {
    return `${this.#prefix}config/versions/`;
  }
  get #instancesPrefix(): string {
    return `${this.#prefix}instances/`;
  }

  /** Runs `fn`, retrying transient failures until RETRY_FOR_MS; then UNAVAILABLE. */
  async #retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = this.#clock.now() + RETRY_FOR_MS;
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw meshError('UNAVAILABLE', 'the store is closed');
      try {
        return await fn();
      } catch (e) {
        if (isMeshError(e)) throw e;
        if (!isTransient(e) || this.#clock.now() >= deadline) throw meshError('UNAVAILABLE', `etcd: ${what} failed: ${(e as Error).message}`, { attempts: attempt }, e);
        this.#log.debug({ what, attempt, err: (e as Error).message }, 'etcd call failed; retrying');
        await new Promise<void>((r) => this.#clock.setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }

  #parseVersion(kv: IKeyValue | undefined): ConfigVersion | undefined {
    if (!kv) return undefined;
    try {
      const { writeId: _writeId, ...v } = JSON.parse(kv.value.toString()) as StoredVersion;
      return Object.freeze(v);
    } catch (e) {
      this.#log.error({ key: kv.key.toString(), err: (e as Error).message }, 'skipping an unreadable config version in etcd');
      return undefined;
    }
  }

  async current(): Promise<ConfigVersion | undefined> {
    const res = await this.#retrying('read current config', () => this.#client.getAll().prefix(this.#versionsPrefix).sort('Key', 'Descend').limit(1).exec());
    return this.#parseVersion(res.kvs[0]);
  }

  async get(version: number): Promise<ConfigVersion | undefined> {
    if (!Number.isInteger(version) || version < 1) return undefined;
    const res = await this.#retrying(`read config version ${version}`, () => this.#client.get(this.#versionKey(version)).exec());
    return this.#parseVersion(res.kvs[0]);
  }

  async history(limit?: number): Promise<ConfigVersion[]> {
    let q = this.#client.getAll().prefix(this.#versionsPrefix).sort('Key', 'Descend');
    if (limit !== undefined) {
      if (limit <= 0) return [];
      q = q.limit(limit);
    }
    const res = await this.#retrying('read config history', () => q.exec());
    return res.kvs.map((kv) => this.#parseVersion(kv)).filter((v): v is ConfigVersion => v !== undefined);
  }

  async #currentVersion(): Promise<number> {
    const res = await this.#retrying('read current version', () => this.#client.get(this.#currentKey).exec());
    const raw = res.kvs[0]?.value.toString();
    return raw === undefined ? 0 : Number(raw);
  }

  put(write: ConfigWrite, expectedVersion?: number): Promise<ConfigVersion> {
    return this.#put(write, expectedVersion);
  }

  async rollback(version: number, meta: { author: string; note: string }, expectedVersion?: number): Promise<ConfigVersion> {
    const old = await this.get(version);
    if (!old) {
      const kept = (await this.history()).map((v) => v.version);
      throw meshError('NOT_FOUND', `config version ${version} is not in history (kept: ${kept.length ? `${kept.at(-1)}–${kept[0]}` : 'none'})`, { version });
    }
    return this.#put({ config: old.config, text: old.text, author: meta.author, note: meta.note || `rollback to version ${version}`, rollbackOf: version }, expectedVersion);
  }

  async #put(write: ConfigWrite, expectedVersion: number | undefined): Promise<ConfigVersion> {
    if (this.#closed) throw meshError('UNAVAILABLE', 'the store is closed');
    const writeId = randomUUID();
    const deadline = this.#clock.now() + RETRY_FOR_MS;
    for (;;) {
      const cur = await this.#currentVersion();
      if (expectedVersion !== undefined && expectedVersion !== cur) {
        throw meshError('CONFLICT', `expected version ${expectedVersion} but the current version is ${cur}: re-read and retry`, { expectedVersion, currentVersion: cur });
      }
      const next: ConfigVersion = Object.freeze({
        version: cur + 1,
        config: write.config,
        text: write.text,
        author: write.author,
        note: write.note,
        createdAt: this.#wall().toISOString(),
        ...(write.rollbackOf !== undefined ? { rollbackOf: write.rollbackOf } : {}),
      });
      const stored: StoredVersion = { ...next, writeId };
      const oldest = next.version - this.#limit + 1;
      const txn = (cur === 0 ? this.#client.if(this.#currentKey, 'Version', '==', 0) : this.#client.if(this.#currentKey, 'Value', '==', String(cur))).then(
        this.#client.put(this.#versionKey(next.version)).value(JSON.stringify(stored)),
        this.#client.put(this.#currentKey).value(String(next.version)),
        ...(oldest > 1 ? [this.#client.delete().range(new Range(this.#versionKey(0), this.#versionKey(oldest)))] : []),
      );
      let committed: boolean;
      try {
        committed = (await txn.commit()).succeeded;
      } catch (e) {
        // Outcome unknown: the transaction may have been applied before the error. Our writeId says.
        const landed = await this.#retrying('confirm a config write', () => this.#client.get(this.#versionKey(next.version)).exec()).then(
          (r) => r.kvs[0] !== undefined && (JSON.parse(r.kvs[0].value.toString()) as StoredVersion).writeId === writeId,
        );
        if (landed) {
          this.#announce(next.version);
          return next;
        }
        if (!isTransient(e) || this.#clock.now() >= deadline) throw meshError('UNAVAILABLE', `etcd: writing config version ${next.version} failed: ${(e as Error).message}`, undefined, e);
        continue;
      }
      if (committed) {
        this.#log.info({ version: next.version, author: next.author }, 'config version stored in etcd');
        this.#announce(next.version);
        return next;
      }
      // Another replica wrote in between: with an expected version that is a conflict, otherwise take the next number.
      if (expectedVersion !== undefined) {
        const now = await this.#currentVersion();
        throw meshError('CONFLICT', `expected version ${expectedVersion} but the current version is ${now}: re-read and retry`, { expectedVersion, currentVersion: now });
      }
      if (this.#clock.now() >= deadline) throw meshError('UNAVAILABLE', 'etcd: too much write contention on the config; retry', { version: next.version });
    }
  }

  async instances(): Promise<InstanceRecord[]> {
    const res = await this.#retrying('list instances', () => this.#client.getAll().prefix(this.#instancesPrefix).exec());
    const out: InstanceRecord[] = [];
    for (const kv of res.kvs) {
      try {
        out.push(Object.freeze(JSON.parse(kv.value.toString()) as InstanceRecord));
      } catch {
        this.#log.warn({ key: kv.key.toString() }, 'skipping an unreadable instance record in etcd');
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async register(reg: InstanceRegistration, ttlMs: number): Promise<InstanceRecord> {
    const now = this.#wall().toISOString();
    const record: InstanceRecord = Object.freeze({ ...reg, labels: { ...reg.labels }, ttlMs, registeredAt: now, lastHeartbeatAt: now });
    const key = this.#instancesPrefix + reg.id;
    // etcd leases count whole seconds; round up so an instance never expires before its TTL.
    const ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const old = await this.#retrying('read instance', () => this.#client.get(key).exec());
    const lease = await this.#retrying('grant instance lease', () => this.#client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    await this.#retrying('register instance', () => this.#client.put(key).value(JSON.stringify(record)).lease(lease.ID).exec());
    const oldLease = old.kvs[0]?.lease;
    if (oldLease && oldLease !== '0' && oldLease !== lease.ID) await this.#client.leaseClient.leaseRevoke({ ID: oldLease }).catch(() => undefined);
    return record;
  }

  async heartbeat(id: string): Promise<InstanceRecord> {
    const key = this.#instancesPrefix + id;
    const res = await this.#retrying('read instance', () => this.#client.get(key).exec());
    const kv = res.kvs[0];
    if (!kv) throw meshError('NOT_FOUND', `sidecar instance "${id}" is not registered (expired or never registered): register again`, { id });
    const ttl = await this.#retrying('keep instance lease alive', () => this.#keepAliveOnce(kv.lease));
    if (ttl <= 0) throw meshError('NOT_FOUND', `sidecar instance "${id}" expired: register again`, { id });
    const record: InstanceRecord = Object.freeze({ ...(JSON.parse(kv.value.toString()) as InstanceRecord), lastHeartbeatAt: this.#wall().toISOString() });
    // Only lastHeartbeatAt changes; written under the same lease, and if the key vanished meanwhile it stays gone.
    await this.#retrying('record heartbeat', () =>
      this.#client.if(key, 'Mod', '==', Number(kv.mod_revision)).then(this.#client.put(key).value(JSON.stringify(record)).lease(kv.lease)).commit(),
    );
    return record;
  }

  /** One keepalive of a lease by id over a short-lived stream; resolves with the new TTL (0 = expired). */
  async #keepAliveOnce(leaseId: string): Promise<number> {
    const stream = await this.#client.leaseClient.leaseKeepAlive({ deadline: Date.now() + 1000 });
    try {
      const res = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        stream.write({ ID: leaseId });
      });
      return Number(res.TTL);
    } finally {
      stream.end();
    }
  }

  async deregister(id: string): Promise<boolean> {
    const key = this.#instancesPrefix + id;
    const res = await this.#retrying('read instance', () => this.#client.get(key).exec());
    const kv = res.kvs[0];
    if (!kv) return false;
    await this.#retrying('deregister instance', () => this.#client.delete().key(key).exec());
    if (kv.lease && kv.lease !== '0') await this.#client.leaseClient.leaseRevoke({ ID: kv.lease }).catch(() => undefined);
    return true;
  }

  subscribe(listener: (e: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    const w = this.#watcher;
    this.#watcher = null;
    await w?.cancel().catch(() => undefined);
    if (this.#ownsClient) this.#client.close();
  }

  #emit(e: StoreEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(e);
      } catch (err) {
        this.#log.error({ err }, 'store listener failed');
      }
    }
  }

  #announce(version: number): void {
    if (version <= this.#announced) return;
    this.#announced = version;
    this.#emit({ kind: 'config', version });
  }

  #shape(value: string): string {
    try {
      const { lastHeartbeatAt: _hb, ...rest } = JSON.parse(value) as InstanceRecord;
      return JSON.stringify(rest);
    } catch {
      return value;
    }
  }

  /**
   * Reads the instances, then watches the whole prefix from the next revision. If the watch is
   * cancelled (compaction), it starts over and tells listeners that everything may have changed.
   */
  async #startWatch(): Promise<void> {
    const res = await this.#retrying('read instances', () => this.#client.getAll().prefix(this.#instancesPrefix).exec());
    this.#instanceShape = new Map(res.kvs.map((kv) => [kv.key.toString(), this.#shape(kv.value.toString())]));
    const watcher = await this.#client.watch().prefix(this.#prefix).startRevision(String(BigInt(res.header.revision) + 1n)).create();
    if (this.#closed) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.#watcher = watcher;
    watcher.on('data', (r) => {
      let instancesChanged = false;
      let configVersion = 0;
      for (const ev of r.events) {
        const key = ev.kv.key.toString();
        if (key.startsWith(this.#instancesPrefix)) {
          if (ev.type === 'Put') {
            const shape = this.#shape(ev.kv.value.toString());
            if (this.#instanceShape.get(key) !== shape) instancesChanged = true;
            this.#instanceShape.set(key, shape);
          } else if (this.#instanceShape.delete(key)) instancesChanged = true;
        } else if (key.startsWith(this.#versionsPrefix) && ev.type === 'Put') {
          configVersion = Math.max(configVersion, Number(key.slice(this.#versionsPrefix.length)));
        }
      }
      if (configVersion > 0) this.#announce(configVersion);
      if (instancesChanged) this.#emit({ kind: 'instances' });
    });
    watcher.on('disconnected', (e: Error) => this.#log.warn({ err: e.message }, 'etcd watch disconnected; the client resumes it from the last revision'));
    watcher.on('connected', () => this.#log.debug('etcd watch connected'));
    watcher.on('error', (e: Error) => {
      if (this.#closed) return;
      this.#log.warn({ err: e.message }, 'etcd watch cancelled; re-reading and watching again');
      this.#watcher = null;
      void watcher.cancel().catch(() => undefined);
      const again = (): void => {
        if (this.#closed) return;
        this.#startWatch().then(
          async () => {
            const cur = await this.current().catch(() => undefined);
            if (cur) this.#announce(cur.version);
            this.#emit({ kind: 'instances' });
          },
          (err: Error) => {
            this.#log.warn({ err: err.message }, 'etcd watch restart failed; retrying');
            this.#clock.setTimeout(again, 1000);
          },
        );
      };
      again();
    });
  }
}

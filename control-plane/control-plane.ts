// Wires store → generate → push and serves the API. The store's change events (from this replica or,
// with etcd, from others) are the one trigger for regenerating and pushing snapshots.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { formatHostPort } from '../core/address.js';
import type { Logger } from '../core/log.js';
import type { EndpointRecord, Snapshot } from '../core/snapshot.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../core/telemetry/metrics.js';
import { ControlPlaneApi } from './api.js';
import { generate } from './generate.js';
import { SnapshotPusher } from './push.js';
import type { Store } from './store/store.js';

export interface ControlPlaneOptions {
  store: Store;
  log: Logger;
  token?: string;
  /** TTL of registered instances (default 10 s). */
  instanceTtlMs?: number;
  /** Filled by core/telemetry with control-plane metrics; a fresh one when not given. */
  metrics?: Registry;
  clock?: Clock;
  coalesceMs?: number;
  keepAliveMs?: number;
  maxBodyBytes?: number;
}

export class ControlPlane {
  readonly store: Store;
  readonly pusher: SnapshotPusher;
  readonly api: ControlPlaneApi;
  readonly metrics: Registry;
  #log: Logger;
  #server: Server | undefined;
  #discovered = new Map<string, readonly EndpointRecord[]>();
  #unsubscribe: (() => void) | undefined;
  #telemetry: ControlPlaneMetrics;

  constructor(opts: ControlPlaneOptions) {
    this.store = opts.store;
    this.#log = opts.log;
    this.metrics = opts.metrics ?? new Registry();
    this.#telemetry = createControlPlaneMetrics(this.metrics, { clock: opts.clock });
    this.pusher = new SnapshotPusher({
      observer: this.#telemetry,
      generate: () => this.#generate(),
      coalesceMs: opts.coalesceMs,
      keepAliveMs: opts.keepAliveMs,
      clock: opts.clock,
      log: opts.log,
    });
    this.api = new ControlPlaneApi({
      store: opts.store,
      pusher: this.pusher,
      log: opts.log,
      token: opts.token,
      instanceTtlMs: opts.instanceTtlMs ?? 10_000,
      discovered: () => this.#discovered,
      metrics: this.metrics,
      maxBodyBytes: opts.maxBodyBytes,
    });
    this.#telemetry.trackSyncStates(this.pusher);
  }

  /** Discovery providers deliver each service's complete current set here (stale-marked on errors). */
  setDiscovered(service: string, endpoints: readonly EndpointRecord[]): void {
    if (endpoints.length === 0) this.#discovered.delete(service);
    else this.#discovered.set(service, endpoints);
    this.pusher.invalidate();
  }

  async #generate(): Promise<Snapshot | undefined> {
    const [config, instances] = await Promise.all([this.store.current(), this.store.instances()]);
    this.pusher.setRegistered(instances.map((i) => i.id));
    return config ? generate({ config, instances, discovered: this.#discovered }) : undefined;
  }

  async #countVersion(version: number): Promise<void> {
    const v = await this.store.get(version).catch(() => undefined);
    this.#telemetry.configVersion(version, v?.rollbackOf !== undefined ? 'rollback' : 'apply');
  }

  /** Generates the first snapshot, then serves the API on host:port (port 0 = any free one). */
  async listen(host: string, port: number): Promise<AddressInfo> {
    this.#unsubscribe = this.store.subscribe((e) => {
      this.pusher.invalidate();
      if (e.kind === 'config') void this.#countVersion(e.version);
    });
    const cur = await this.store.current();
    if (cur) this.#telemetry.configVersion(cur.version, 'load');
    await this.pusher.refresh();
    const server = createServer({ keepAliveTimeout: 65_000 }, this.api.handle);
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    this.#log.info({ listener: 'api', address: formatHostPort({ host: addr.address, port: addr.port }) }, 'listening');
    return addr;
  }

  /** Ends every watch stream, stops accepting calls, closes the store. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.pusher.close();
    const server = this.#server;
    if (server) {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      // Watch streams were ended above; anything still open after that is cut.
      const cut = setTimeout(() => server.closeAllConnections(), 2000);
      cut.unref();
      await closed;
      clearTimeout(cut);
    }
    await this.store.close();
  }
}

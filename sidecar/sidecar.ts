// The sidecar: listeners around one reference to the Runtime in force. applySnapshot() builds a new
// Runtime and swaps it in with one assignment (requests in flight finish on the one they started
// with); a snapshot that cannot be built is refused and the old one keeps serving.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { formatHostPort, type HostPort } from '../core/address.js';
import { systemClock, type Clock } from '../core/clock.js';
import { isMeshError, meshError } from '../core/errors.js';
import { writeRawError } from './error-response.js';
import type { Logger } from '../core/log.js';
import type { Snapshot } from '../core/snapshot.js';
import { noopObserver, type SidecarObserver } from '../core/telemetry/observer.js';
import { adminListener, type AdminDeps } from './listeners/admin.js';
import { createHardenedServer, DEFAULT_LIMITS, listen, type ServerLimits } from './listeners/http-server.js';
import { inboundListener, inboundUpgrade } from './listeners/inbound.js';
import { outboundListener, outboundUpgrade, type OutboundDeps } from './listeners/outbound.js';
import { DrainGate } from './drain-gate.js';
import { PoolRegistry } from './pool-registry.js';
import { buildRuntime, type Runtime } from './runtime.js';
import { EgressAgent, UpstreamPool } from './upstream/upstream-pool.js';

export interface SidecarOptions {
  /** The service this sidecar stands beside (labels inbound telemetry). */
  service: string;
  /** The local app (inbound target); no inbound listener without it. */
  app?: HostPort;
  inbound?: HostPort;
  outbound?: HostPort;
  admin?: HostPort;
  /** A local port per upstream service: requests to it go to that service whatever their Host. */
  upstreams?: Array<{ service: string; listen: HostPort }>;
  limits?: Partial<ServerLimits>;
  inboundMaxRequests?: number;
  drainTimeoutMs?: number;
  observer?: SidecarObserver;
  metrics?: AdminDeps['metrics'];
  adminExtra?: AdminDeps['extra'];
  log: Logger;
  clock?: Clock;
  random?: () => number;
}

export type ApplyResult = { ok: true } | { ok: false; reason: string; details?: unknown };

export class Sidecar {
  readonly #opts: SidecarOptions;
  readonly #clock: Clock;
  readonly #observer: SidecarObserver;
  readonly #pools = new PoolRegistry();
  readonly #egress = new EgressAgent();
  #app: UpstreamPool | undefined;
  #runtime: Runtime | undefined;
  #servers: Array<{ name: string; server: Server }> = [];
  #sockets = new Set<Socket>();
  readonly #gate = new DrainGate(); // draining, and requests in flight on the traffic listeners
  #lastRefusal: { version: string; reason: string; at: string } | undefined;
  readonly addresses: Record<string, string> = {};

  constructor(opts: SidecarOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#observer = opts.observer ?? noopObserver;
  }

  get runtime(): Runtime | undefined {
    return this.#runtime;
  }

  get ready(): boolean {
    return this.#runtime !== undefined && !this.#gate.draining;
  }

  async applySnapshot(snapshot: Snapshot): Promise<ApplyResult> {
    if (this.#runtime?.snapshot.hash === snapshot.hash) return { ok: true };
    let next: Runtime;
    try {
      next = buildRuntime(snapshot, this.#runtime, { clock: this.#clock, pools: this.#pools, observer: this.#observer, random: this.#opts.random });
    } catch (e) {
      const reason = (e as Error).message;
      this.#lastRefusal = { version: snapshot.version, reason, at: new Date().toISOString() };
      this.#observer.configRefused(snapshot.version, reason);
      this.#opts.log.warn({ version: snapshot.version, reason, details: isMeshError(e) ? e.details : undefined }, 'config refused; the previous one keeps serving');
      return { ok: false, reason, details: isMeshError(e) ? e.details : undefined };
    }
    this.#runtime = next;
    this.#pools.retainOnly(next.pools);
    this.#observer.configApplied(snapshot.version, snapshot.hash);
    this.#observer.telemetryConfigured({ accessLog: next.config.accessLog, tracingSampleRatio: next.config.tracingSampleRatio });
    this.#opts.log.info({ version: snapshot.version, hash: snapshot.hash.slice(0, 12), services: next.services.size }, 'config applied');
    return { ok: true };
  }

  async start(): Promise<void> {
    const o = this.#opts;
    const limits = { ...DEFAULT_LIMITS, ...o.limits };
    const gate = this.#gate;
    const deps: OutboundDeps = { runtime: () => this.#runtime, egress: this.#egress, observer: this.#observer, gate };
    if (o.outbound) await this.#bind('outbound', o.outbound, limits, outboundListener(deps), outboundUpgrade(deps));
    for (const u of o.upstreams ?? []) await this.#bind(`upstream:${u.service}`, u.listen, limits, outboundListener(deps, u.service), outboundUpgrade(deps, u.service));
    if (o.app && o.inbound) {
      this.#app = new UpstreamPool(formatHostPort(o.app), { connections: 256, connectTimeoutMs: 1_000 });
      const ideps = { service: o.service, app: this.#app, maxRequests: o.inboundMaxRequests ?? 1024, observer: this.#observer, gate };
      await this.#bind('inbound', o.inbound, limits, inboundListener(ideps), inboundUpgrade(ideps));
    }
    if (o.admin) {
      const admin = adminListener({ runtime: () => this.#runtime, ready: () => this.ready, status: () => this.status(), metrics: o.metrics, extra: o.adminExtra });
      await this.#bind('admin', o.admin, limits, admin);
    }
  }

  status(): Record<string, unknown> {
    return {
      service: this.#opts.service,
      version: this.#runtime?.snapshot.version ?? null,
      hash: this.#runtime?.snapshot.hash ?? null,
      draining: this.#gate.draining,
      lastRefusal: this.#lastRefusal ?? null,
      listeners: this.addresses,
    };
  }

  async #bind(name: string, at: HostPort, limits: ServerLimits, onRequest: Parameters<typeof createHardenedServer>[3], onUpgrade?: (req: import('node:http').IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void): Promise<void> {
    const server = createHardenedServer(name, limits, this.#opts.log, onRequest);
    if (onUpgrade) server.on('upgrade', onUpgrade);
    server.on('connect', (_req, socket: Socket) => writeRawError(socket, meshError('METHOD_NOT_ALLOWED', 'CONNECT tunnels are not supported; send plain HTTP requests.')));
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    const bound = await listen(server, at);
    const address = formatHostPort(bound);
    this.addresses[name] = address;
    this.#servers.push({ name, server });
    this.#opts.log.info({ listener: name, address }, 'listening');
  }

  /**
   * Graceful stop: not ready, stop accepting, let requests in flight finish (responses carry
   * `connection: close`), then close pools. Resolves when done or after drainTimeoutMs.
   */
  async drain(): Promise<void> {
    if (this.#gate.draining) return;
    this.#gate.draining = true;
    const o = this.#opts;
    const traffic = this.#servers.filter((s) => s.name !== 'admin');
    for (const { server } of traffic) {
      server.close();
      server.closeIdleConnections();
    }
    const deadline = this.#clock.now() + (o.drainTimeoutMs ?? 10_000);
    await new Promise<void>((resolve) => {
      const check = (): void => {
        const busy = this.#inflight();
        if (busy === 0 || this.#clock.now() >= deadline) {
          if (busy > 0) o.log.warn({ inflight: busy }, 'drain timeout: closing connections with requests in flight');
          resolve();
          return;
        }
        for (const { server } of traffic) server.closeIdleConnections();
        this.#clock.setTimeout(check, 25);
      };
      check();
    });
    for (const { server } of this.#servers) server.closeAllConnections();
    for (const s of this.#sockets) s.destroy();
    for (const { server } of this.#servers) server.close();
    await Promise.all([this.#pools.closeAll(), this.#egress.close(), this.#app?.close()]);
  }

  #inflight(): number {
    return this.#gate.active;
  }
}

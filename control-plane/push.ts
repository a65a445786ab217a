// Push: keeps every sidecar's watch stream (SSE) and sends it the current snapshot only when the
// hash differs from what it last received; records ACK/NACK per sidecar (synced / stale / refused,
// like `istioctl proxy-status`). Changes are coalesced: the first invalidate() opens a short window,
// every change inside it rides along, and one snapshot is generated and serialized once for all.
import type { ServerResponse } from 'node:http';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { isMeshError, meshError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Snapshot } from '../core/snapshot.js';

export type SyncStatus = 'synced' | 'stale' | 'refused' | 'no-config';

export interface SnapshotRef {
  hash: string;
  version: string;
  /** Wall time, ISO 8601. */
  at: string;
}

export interface SidecarSyncState {
  id: string;
  connected: boolean;
  /** Last time the sidecar was heard from (stream opened/closed, ACK, heartbeat), ISO 8601. */
  lastSeen: string;
  sent?: SnapshotRef;
  applied?: SnapshotRef;
  lastRefusal?: SnapshotRef & { reason: string };
  status: SyncStatus;
}

export interface Ack {
  hash: string;
  version: string;
  ok: boolean;
  reason?: string;
}

/** Telemetry hooks (core/telemetry ControlPlaneMetrics implements them). */
export interface PushObserver {
  pushSent(sidecar: string): void;
  pushAcked(sidecar: string): void;
  pushRefused(sidecar: string): void;
  sidecarGone(sidecar: string): void;
}

export interface SnapshotPusherOptions {
  /** Produces the snapshot every sidecar should run (undefined while there is no config). */
  generate: () => Promise<Snapshot | undefined>;
  /** How long a burst of changes is collected before one snapshot is generated (default 10 ms). */
  coalesceMs?: number;
  /** Comment lines sent this often keep proxies and load balancers from idling the stream out (default 15 s). */
  keepAliveMs?: number;
  clock?: Clock;
  wallClock?: () => Date;
  log?: Logger;
  /** Called after each generated snapshot is sent (telemetry hook). */
  onPushed?: (snapshot: Snapshot, streams: number) => void;
  observer?: PushObserver;
  /** A stream with more than this many bytes unsent is cut (the client reconnects and gets the latest); default 8 MiB. */
  maxBufferedBytes?: number;
  /** A generation that has not finished by then is given up and tried again (default 10 s). */
  generateTimeoutMs?: number;
}

interface Session {
  id: string;
  stream?: ServerResponse;
  lastSeen: string;
  /** Hash the stream last received (pushed, or reported by the client when it reconnected). */
  received?: string;
  sent?: SnapshotRef;
  applied?: SnapshotRef;
  lastRefusal?: SnapshotRef & { reason: string };
}

const KEEPALIVE_FRAME = Buffer.from(': keep-alive\n\n');
const HELLO_FRAME = Buffer.from(': connected\n\n');

export class SnapshotPusher {
  #opts: SnapshotPusherOptions;
  #clock: Clock;
  #wall: () => Date;
  #log: Logger;
  #sessions = new Map<string, Session>();
  #registered = new Set<string>();
  #current: Snapshot | undefined;
  #frame: Buffer | undefined;
  #timer: TimerHandle | undefined;
  #running: Promise<void> | undefined;
  #dirty = false;
  #keepAlive: TimerHandle | undefined;
  #closed = false;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: SnapshotPusherOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#wall = opts.wallClock ?? (() => new Date());
    this.#log = opts.log ?? silentLogger;
    this.#armKeepAlive();
  }

  get current(): Snapshot | undefined {
    return this.#current;
  }

  get connectedCount(): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.stream) n++;
    return n;
  }

  /** Generates the first snapshot now (call once at start, before serving watchers). */
  async refresh(): Promise<void> {
    this.#dirty = true;
    await this.#run();
  }

  /** Something the snapshot depends on changed: regenerate soon, coalescing bursts. */
  invalidate(): void {
    if (this.#closed) return;
    this.#dirty = true;
    if (this.#timer !== undefined || this.#running) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, this.#opts.coalesceMs ?? 10);
  }

  /** Resolves once no regeneration is scheduled or running (registration waits on it; tests). */
  async settled(): Promise<void> {
    if (!this.#running && this.#timer === undefined) return;
    await new Promise<void>((r) => this.#idleWaiters.push(r));
  }

  #wakeIdleWaiters(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  async #run(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = (async () => {
      while (this.#dirty && !this.#closed) {
        this.#dirty = false;
        try {
          const next = await this.#bounded(this.#opts.generate());
          if (next && next.hash !== this.#current?.hash) this.#publish(next);
          // A newer version with the same content (a change undone, or coalesced with its undoing):
          // nothing to send, but the snapshot in force is named by the newest version.
          else if (next && next.version !== this.#current?.version) this.#adopt(next);
        } catch (err) {
          // Keep pushing the last good snapshot; the next change retries, and a timed-out one now.
          this.#log.error({ err }, 'snapshot generation failed');
          if (isMeshError(err, 'UNAVAILABLE') && err.details?.generateTimeout === true) this.#dirty = true;
        }
      }
    })().finally(() => {
      this.#running = undefined;
      // A change that landed between the loop's last check and here must not be lost.
      if (this.#dirty && !this.#closed) this.invalidate();
      else if (this.#timer === undefined) this.#wakeIdleWaiters();
    });
    return this.#running;
  }

  /**
   * A generation reads the store; one call that never returns (a store connection gone quiet) must
   * not stop every later push, since while it runs new changes only mark the pusher dirty.
   */
  #bounded(p: Promise<Snapshot | undefined>): Promise<Snapshot | undefined> {
    const ms = this.#opts.generateTimeoutMs ?? 10_000;
    let timer: TimerHandle | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(() => reject(meshError('UNAVAILABLE', `snapshot generation did not finish within ${ms}ms`, { generateTimeout: true })), ms);
    });
    return Promise.race([p, late]).finally(() => this.#clock.clearTimeout(timer!));
  }

  #adopt(next: Snapshot): void {
    this.#current = next;
    this.#frame = Buffer.from(`id: ${next.hash}\nevent: snapshot\ndata: ${JSON.stringify(next)}\n\n`);
  }

  #publish(next: Snapshot): void {
    this.#adopt(next);
    let streams = 0;
    const at = this.#wall().toISOString();
    for (const s of this.#sessions.values()) if (this.#send(s, at)) streams++;
    this.#log.info({ version: next.version, hash: next.hash, streams }, 'snapshot pushed');
    this.#opts.onPushed?.(next, streams);
  }

  /** Sends the current snapshot unless this stream already has it. */
  #send(s: Session, at = this.#wall().toISOString()): boolean {
    const cur = this.#current;
    if (!s.stream || !cur || !this.#frame || s.received === cur.hash) return false;
    if (s.stream.writableLength > (this.#opts.maxBufferedBytes ?? 8 * 1024 * 1024)) {
      // A watcher that does not read would make us hold every snapshot for it; it resumes on reconnect.
      this.#log.warn({ sidecar: s.id, buffered: s.stream.writableLength }, 'watch stream not reading; closing it');
      s.stream.destroy();
      return false;
    }
    s.stream.write(this.#frame);
    s.received = cur.hash;
    s.sent = { hash: cur.hash, version: cur.version, at };
    this.#opts.observer?.pushSent(s.id);
    return true;
  }

  /**
   * Takes over `res` as the sidecar's watch stream (an earlier stream of the same sidecar is closed).
   * `received` is the hash of the snapshot the sidecar last received (SSE Last-Event-ID), `applied`
   * the one it runs; when `received` is current, nothing is resent.
   */
  attach(id: string, res: ServerResponse, known: { received?: string; applied?: { hash: string; version: string } } = {}): void {
    if (this.#closed) throw meshError('UNAVAILABLE', 'the control plane is shutting down');
    const s = this.#session(id);
    if (s.stream && s.stream !== res) s.stream.end();
    s.stream = res;
    s.received = known.received;
    if (known.applied && !(s.applied?.hash === known.applied.hash)) s.applied = { ...known.applied, at: s.lastSeen };
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // Ask buffering reverse proxies (nginx) to pass events through at once.
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    res.write(HELLO_FRAME);
    const onClose = (): void => {
      if (s.stream !== res) return;
      s.stream = undefined;
      this.#opts.observer?.sidecarGone(id);
      s.lastSeen = this.#wall().toISOString();
      // A watcher that never registered leaves no trace once it is gone.
      if (!this.#registered.has(id)) this.#sessions.delete(id);
    };
    res.once('close', onClose);
    this.#send(s);
  }

  /** Records an ACK (ok) or NACK (refused, with its reason). */
  ack(id: string, a: Ack): SidecarSyncState {
    const s = this.#session(id);
    const ref = { hash: a.hash, version: a.version, at: s.lastSeen };
    if (a.ok) {
      s.applied = ref;
      if (s.lastRefusal?.hash === a.hash) s.lastRefusal = undefined;
      this.#opts.observer?.pushAcked(id);
    } else {
      s.lastRefusal = { ...ref, reason: a.reason ?? '(no reason given)' };
      this.#opts.observer?.pushRefused(id);
    }
    return this.#state(s);
  }

  /** The sidecar was heard from another way (registry heartbeat). */
  seen(id: string): void {
    const s = this.#sessions.get(id);
    if (s) s.lastSeen = this.#wall().toISOString();
  }

  /** The live registered ids; sessions of sidecars neither registered nor connected are dropped. */
  setRegistered(ids: Iterable<string>): void {
    this.#registered = new Set(ids);
    for (const [id, s] of this.#sessions) if (!s.stream && !this.#registered.has(id)) this.#sessions.delete(id);
  }

  state(id: string): SidecarSyncState | undefined {
    const s = this.#sessions.get(id);
    return s ? this.#state(s) : undefined;
  }

  states(): SidecarSyncState[] {
    return [...this.#sessions.values()].map((s) => this.#state(s)).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Closes every stream (sidecars reconnect to another replica or when this one is back). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wakeIdleWaiters();
    if (this.#keepAlive !== undefined) this.#clock.clearTimeout(this.#keepAlive);
    for (const s of this.#sessions.values()) s.stream?.end();
  }

  #session(id: string): Session {
    let s = this.#sessions.get(id);
    const now = this.#wall().toISOString();
    if (!s) {
      s = { id, lastSeen: now };
      this.#sessions.set(id, s);
    }
    s.lastSeen = now;
    return s;
  }

  #state(s: Session): SidecarSyncState {
    const cur = this.#current;
    const status: SyncStatus = !cur
      ? 'no-config'
      : s.lastRefusal?.hash === cur.hash
        ? 'refused'
        : s.applied?.hash === cur.hash
          ? 'synced'
          : 'stale';
    return {
      id: s.id,
      connected: s.stream !== undefined,
      lastSeen: s.lastSeen,
      ...(s.sent ? { sent: s.sent } : {}),
      ...(s.applied ? { applied: s.applied } : {}),
      ...(s.lastRefusal ? { lastRefusal: s.lastRefusal } : {}),
      status,
    };
  }

  #armKeepAlive(): void {
    const ms = this.#opts.keepAliveMs ?? 15_000;
    this.#keepAlive = this.#clock.setTimeout(() => {
      for (const s of this.#sessions.values()) s.stream?.write(KEEPALIVE_FRAME);
      if (!this.#closed) this.#armKeepAlive();
    }, ms);
    this.#keepAlive.unref?.();
  }
}

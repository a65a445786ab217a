// The sidecar's side of the control plane: register and heartbeat its instance, watch snapshots over
// SSE, apply each one through the sidecar (which swaps or refuses), answer ACK/NACK, and persist the
// last applied snapshot so a restart with the control plane down still serves. Reconnects with
// exponential backoff and full jitter, failing over between the given control-plane URLs.
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { snapshotHash, type Snapshot } from '../core/snapshot.js';

export interface ControlPlaneClientOptions {
  /** One or more control plane base URLs; the client fails over between them. */
  urls: string[];
  token?: string;
  /** Stable per instance. */
  sidecarId: string;
  service: string;
  /** Inbound address peers should call, and the instance's labels. */
  instance: { address: string | null; labels: Record<string, string> };
  adminAddress: string;
  /** The last APPLIED snapshot is persisted here as snapshot.json. */
  dataDir: string;
  /** The sidecar builds and swaps the snapshot, or refuses it with a reason. */
  apply: (s: Snapshot) => Promise<{ ok: true } | { ok: false; reason: string }>;
  log: Logger;
  clock?: Clock;
  /** Reconnect backoff (defaults 250 ms doubling to 5 s, full jitter). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Reconnect when the stream is silent this long (the control plane sends keep-alives every 15 s; default 45 s). */
  idleTimeoutMs?: number;
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Incremental text/event-stream decoder (WHATWG SSE framing: fields, comments, blank-line dispatch). */
export class SseDecoder {
  #buf = '';
  #data: string[] = [];
  #event = '';
  #id: string | undefined;

  push(chunk: string): SseEvent[] {
    this.#buf += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const nl = this.#buf.search(/\r\n|\r|\n/);
      if (nl < 0) break;
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + (this.#buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (this.#data.length > 0) out.push({ ...(this.#id !== undefined ? { id: this.#id } : {}), event: this.#event || 'message', data: this.#data.join('\n') });
        this.#data = [];
        this.#event = '';
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.#data.push(value);
      else if (field === 'event') this.#event = value;
      else if (field === 'id' && !value.includes('\0')) this.#id = value;
    }
    return out;
  }
}

const SAVED_FILE = 'snapshot.json';

function isSnapshot(v: unknown): v is Snapshot {
  const s = v as Partial<Snapshot> | null;
  return !!s && typeof s === 'object' && typeof s.version === 'string' && typeof s.hash === 'string' && typeof s.config === 'object' && s.config !== null && typeof s.endpoints === 'object' && s.endpoints !== null;
}

export class ControlPlaneClient {
  #o: ControlPlaneClientOptions;
  #clock: Clock;
  #urlIndex = 0;
  #stopped = false;
  #started = false;
  #connected = false;
  #deregistered = false;
  #attempt = 0;
  #heartbeatMs = 3000;
  #heartbeatTimer: TimerHandle | undefined;
  #retryTimer: { handle: TimerHandle; wake: () => void } | undefined;
  #watchReq: ClientRequest | undefined;
  #loop: Promise<void> | undefined;
  /** Hash of the last snapshot received (SSE Last-Event-ID), applied or not. */
  #received: string | undefined;
  #applied: { hash: string; version: string } | undefined;
  /** Snapshots are applied one at a time, in order; only the newest waiting one is applied. */
  #applyChain: Promise<void> = Promise.resolve();
  #latest: SseEvent | undefined;

  constructor(opts: ControlPlaneClientOptions) {
    if (opts.urls.length === 0) throw new Error('ControlPlaneClient needs at least one control plane URL');
    for (const u of opts.urls) new URL(u); // throws on a malformed URL before anything starts
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The snapshot applied last time (persisted), if any and intact. The sidecar applies it at start. */
  async loadSaved(): Promise<Snapshot | undefined> {
    const file = path.join(this.#o.dataDir, SAVED_FILE);
    let raw: string;
    try {
      raw = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.log.warn({ file, err: (e as Error).message }, 'cannot read the saved snapshot');
      return undefined;
    }
    try {
      const s = JSON.parse(raw) as unknown;
      if (!isSnapshot(s) || snapshotHash(s.config, s.endpoints) !== s.hash) throw new Error('content does not match its hash');
      this.#applied = { hash: s.hash, version: s.version };
      this.#received = s.hash;
      return s;
    } catch (e) {
      this.#o.log.warn({ file, err: (e as Error).message }, 'ignoring a damaged saved snapshot');
      return undefined;
    }
  }

  /** Registers, heartbeats and watches until stop(); never throws (failures are logged and retried). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.#run();
  }

  /** Removes this instance from the control plane now, so peers stop sending to it (first step of SIGTERM). */
  async deregister(): Promise<void> {
    this.#deregistered = true;
    this.#stopHeartbeat();
    for (let i = 0; i < this.#o.urls.length; i++) {
      const url = this.#o.urls[(this.#urlIndex + i) % this.#o.urls.length]!;
      try {
        const res = await this.#call(url, 'DELETE', `/v1/sidecars/${encodeURIComponent(this.#o.sidecarId)}`, undefined, 2000);
        if (res.status === 204 || res.status === 404) {
          this.#o.log.info({ url, status: res.status }, 'deregistered from the control plane');
          return;
        }
        this.#o.log.warn({ url, status: res.status, body: res.body.slice(0, 300) }, 'deregistration refused');
      } catch (e) {
        this.#o.log.warn({ url, err: (e as Error).message }, 'deregistration failed');
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopHeartbeat();
    this.#watchReq?.destroy();
    if (this.#retryTimer) {
      this.#clock.clearTimeout(this.#retryTimer.handle);
      this.#retryTimer.wake();
    }
    await this.#loop;
    await this.#applyChain;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const url = this.#o.urls[this.#urlIndex]!;
      try {
        if (!this.#deregistered) await this.#register(url);
        await this.#watch(url);
      } catch (e) {
        if (!this.#stopped) this.#o.log.warn({ url, err: errorText(e) }, 'control plane unreachable');
      }
      this.#stopHeartbeat();
      if (this.#connected) this.#o.log.warn({ url }, 'control plane stream closed');
      this.#connected = false;
      if (this.#stopped) break;
      // Another replica may be up: try the next URL after the backoff.
      this.#urlIndex = (this.#urlIndex + 1) % this.#o.urls.length;
      await this.#backoff();
    }
  }

  async #backoff(): Promise<void> {
    const base = this.#o.backoff?.baseMs ?? 250;
    const max = this.#o.backoff?.maxMs ?? 5000;
    const ceiling = Math.min(max, base * 2 ** Math.min(this.#attempt, 20));
    this.#attempt++;
    // Full jitter spreads a fleet's reconnects after a control-plane restart.
    const ms = Math.random() * ceiling;
    await new Promise<void>((wake) => {
      this.#retryTimer = { handle: this.#clock.setTimeout(wake, ms), wake };
    });
    this.#retryTimer = undefined;
  }

  async #register(url: string): Promise<void> {
    const body = { id: this.#o.sidecarId, service: this.#o.service, address: this.#o.instance.address, labels: this.#o.instance.labels, adminAddress: this.#o.adminAddress };
    const res = await this.#call(url, 'POST', '/v1/sidecars', body, 3000);
    if (res.status !== 201) throw new Error(`registration refused: ${res.status} ${describeError(res.body)}`);
    const reply = JSON.parse(res.body) as { heartbeatMs?: number };
    if (typeof reply.heartbeatMs === 'number' && reply.heartbeatMs > 0) this.#heartbeatMs = reply.heartbeatMs;
    this.#o.log.info({ url, sidecar: this.#o.sidecarId, heartbeatMs: this.#heartbeatMs }, 'registered with the control plane');
    this.#scheduleHeartbeat(url);
  }

  #scheduleHeartbeat(url: string): void {
    this.#stopHeartbeat();
    const t = this.#clock.setTimeout(() => {
      this.#heartbeatTimer = undefined;
      void this.#heartbeat(url);
    }, this.#heartbeatMs);
    t.unref?.();
    this.#heartbeatTimer = t;
  }

  async #heartbeat(url: string): Promise<void> {
    if (this.#stopped || this.#deregistered) return;
    try {
      const res = await this.#call(url, 'POST', `/v1/sidecars/${encodeURIComponent(this.#o.sidecarId)}/heartbeat`, undefined, Math.max(500, this.#heartbeatMs));
      // 404: the control plane forgot us (restart, or we were late): register again.
      if (res.status === 404 && !this.#deregistered) await this.#register(url);
      else if (res.status !== 200) this.#o.log.warn({ url, status: res.status, body: describeError(res.body) }, 'heartbeat refused');
    } catch (e) {
      this.#o.log.warn({ url, err: (e as Error).message }, 'heartbeat failed');
    }
    if (!this.#stopped && !this.#deregistered && this.#heartbeatTimer === undefined) this.#scheduleHeartbeat(url);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== undefined) this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  /** Resolves when the stream ends; rejects when it cannot be opened. */
  #watch(base: string): Promise<void> {
    const u = new URL('/v1/watch', base);
    u.searchParams.set('sidecar', this.#o.sidecarId);
    if (this.#applied) {
      u.searchParams.set('hash', this.#applied.hash);
      u.searchParams.set('version', this.#applied.version);
    }
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.#received) headers['last-event-id'] = this.#received;
    if (this.#o.token) headers.authorization = `Bearer ${this.#o.token}`;
    return new Promise<void>((resolve, reject) => {
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'GET', headers });
      this.#watchReq = req;
      req.setTimeout(this.#o.idleTimeoutMs ?? 45_000, () => req.destroy(new Error('watch stream idle for too long')));
      req.once('error', (e) => (this.#connected ? resolve() : reject(e)));
      req.once('response', (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (body.length < 4096) body += c;
          });
          res.once('end', () => reject(new Error(`watch refused: ${res.statusCode} ${describeError(body)}`)));
          return;
        }
        this.#connected = true;
        this.#attempt = 0;
        this.#o.log.info({ url: base }, 'control plane connected');
        const decoder = new SseDecoder();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          for (const ev of decoder.push(chunk)) if (ev.event === 'snapshot') this.#enqueue(base, ev);
        });
        res.once('close', () => resolve());
        res.once('error', () => resolve());
      });
      req.end();
    });
  }

  #enqueue(base: string, ev: SseEvent): void {
    this.#o.log.debug({ hash: ev.id }, 'snapshot received');
    this.#latest = ev;
    this.#applyChain = this.#applyChain.then(() => this.#handle(base, ev)).catch((err: unknown) => this.#o.log.error({ err }, 'snapshot handling failed'));
  }

  async #handle(base: string, ev: SseEvent): Promise<void> {
    // While a slow apply ran, a newer snapshot arrived: building this one would be wasted work.
    if (ev !== this.#latest) return;
    let snap: unknown;
    try {
      snap = JSON.parse(ev.data);
    } catch {
      snap = undefined;
    }
    if (!isSnapshot(snap) || snapshotHash(snap.config, snap.endpoints) !== snap.hash) {
      this.#o.log.error({ id: ev.id }, 'received a malformed snapshot');
      if (isSnapshot(snap)) await this.#ack(base, { hash: snap.hash, version: snap.version, ok: false, reason: 'the snapshot does not match its hash' });
      return;
    }
    this.#received = snap.hash;
    if (snap.hash === this.#applied?.hash) {
      await this.#ack(base, { hash: snap.hash, version: snap.version, ok: true });
      return;
    }
    let result: { ok: true } | { ok: false; reason: string };
    try {
      result = await this.#o.apply(snap);
    } catch (e) {
      result = { ok: false, reason: (e as Error).message || String(e) };
    }
    if (result.ok) {
      this.#applied = { hash: snap.hash, version: snap.version };
      this.#o.log.info({ version: snap.version, hash: snap.hash }, 'snapshot applied');
      await this.#save(snap);
      await this.#ack(base, { hash: snap.hash, version: snap.version, ok: true });
    } else {
      this.#o.log.warn({ version: snap.version, hash: snap.hash, reason: result.reason }, 'snapshot refused');
      await this.#ack(base, { hash: snap.hash, version: snap.version, ok: false, reason: result.reason });
    }
  }

  async #ack(base: string, body: { hash: string; version: string; ok: boolean; reason?: string }): Promise<void> {
    try {
      const res = await this.#call(base, 'POST', `/v1/sidecars/${encodeURIComponent(this.#o.sidecarId)}/ack`, body, 3000);
      if (res.status !== 200) this.#o.log.warn({ status: res.status, body: describeError(res.body) }, 'ACK refused');
    } catch (e) {
      // The next watch reconnect reports the applied hash anyway.
      this.#o.log.warn({ err: (e as Error).message }, 'ACK failed');
    }
  }

  /** Atomic and durable: a crash leaves the previous copy or the new one, never half of one. */
  async #save(s: Snapshot): Promise<void> {
    const dir = this.#o.dataDir;
    try {
      await mkdir(dir, { recursive: true });
      const tmp = path.join(dir, `.${SAVED_FILE}.${process.pid}.${randomUUID()}`);
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(s));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path.join(dir, SAVED_FILE));
      const d = await open(dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } catch (e) {
      this.#o.log.warn({ dir, err: (e as Error).message }, 'could not persist the applied snapshot');
    }
  }

  async #call(base: string, method: string, p: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#o.token) headers.authorization = `Bearer ${this.#o.token}`;
    const res = await fetch(new URL(p, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  }
}

/** fetch says only "fetch failed"; the cause has the useful part (ECONNREFUSED…). */
function errorText(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message;
  return detail ? `${(e as Error).message} (${detail})` : (e as Error).message;
}

function describeError(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error;
    if (e?.code) return `${e.code}: ${e.message ?? ''}`;
  } catch {
    /* not a meshlet error body */
  }
  return body.slice(0, 200);
}

// The control plane's HTTP API (node:http; a dozen fixed routes do not need a framework).
// Every error is `{ "error": { code, message, details? } }` with an `x-meshlet-error` header, and a
// refused input changes nothing. Mutating calls need the bearer token when one is configured.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { formatHostPort, parseHostPort } from '../core/address.js';
import { parseMeshConfig } from '../core/config/parse.js';
import { errorBody, isMeshError, meshError, MeshError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { EndpointRecord } from '../core/snapshot.js';
import type { SnapshotPusher } from './push.js';
import { collectStats } from './stats.js';
import type { ConfigVersion, InstanceRecord, Store } from './store/store.js';

export interface ControlPlaneApiOptions {
  store: Store;
  pusher: SnapshotPusher;
  log: Logger;
  /** Bearer token required on mutating calls; undefined = open (loopback-only deployments). */
  token?: string;
  /** TTL given to registered instances; they are told to heartbeat at a third of it. */
  instanceTtlMs: number;
  /** Discovered endpoints by service (discovery providers), for GET /v1/services. */
  discovered: () => ReadonlyMap<string, readonly EndpointRecord[]>;
  /** Served at GET /metrics; control-plane metrics are registered into it by core/telemetry. */
  metrics: Registry;
  /** Largest accepted request body (default 1 MiB). */
  maxBodyBytes?: number;
}

const SIDECAR_ID = /^[A-Za-z0-9][A-Za-z0-9._:@\-[\]]{0,252}$/;
const SERVICE_NAME = /^[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?$/;
// Stored in canonical form (":80" → "127.0.0.1:80") so peers get an address they can dial.
const hostPort = z
  .string()
  .refine((s) => (parseHostPort(s)?.port ?? 0) > 0, 'expected "host:port" with a port 1-65535 (IPv6 as "[::1]:port")')
  .transform((s) => formatHostPort(parseHostPort(s)!));

const registrationBody = z.strictObject({
  id: z.string().regex(SIDECAR_ID, 'expected 1-253 characters of A-Z a-z 0-9 . _ : @ - [ ]'),
  service: z.string().regex(SERVICE_NAME, 'expected a lower-case DNS-style service name'),
  address: hostPort.nullable().default(null),
  labels: z.record(z.string().min(1).max(63), z.string().max(253)).default({}),
  adminAddress: hostPort,
});
const ackBody = z.strictObject({
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'expected the snapshot\'s sha256 hash'),
  version: z.string().min(1).max(64),
  ok: z.boolean(),
  reason: z.string().max(4096).optional(),
});
const rollbackBody = z.strictObject({ version: z.int().min(1), expectedVersion: z.int().min(0).optional(), note: z.string().max(1024).optional() });

type Route = (req: IncomingMessage, res: ServerResponse, url: URL, params: string[]) => Promise<void>;

export class ControlPlaneApi {
  #o: ControlPlaneApiOptions;
  #tokenDigest: Buffer | undefined;
  #routes: Array<{ method: string; pattern: RegExp; mutating: boolean; run: Route }>;

  constructor(opts: ControlPlaneApiOptions) {
    this.#o = opts;
    this.#tokenDigest = opts.token === undefined ? undefined : sha256(opts.token);
    const r = (method: string, path: string, mutating: boolean, run: Route) => ({ method, pattern: new RegExp(`^${path}$`), mutating, run });
    this.#routes = [
      r('GET', '/v1/health', false, (_q, res) => this.#health(res)),
      r('GET', '/v1/config', false, (q, res, url) => this.#getConfig(q, res, url)),
      r('PUT', '/v1/config', true, (q, res, url) => this.#putConfig(q, res, url)),
      r('POST', '/v1/config/validate', false, (q, res) => this.#validate(q, res)),
      r('GET', '/v1/config/history', false, (_q, res, url) => this.#history(res, url)),
      r('GET', '/v1/config/versions/([0-9]{1,15})', false, (q, res, url, p) => this.#version(q, res, url, Number(p[0]))),
      r('POST', '/v1/config/rollback', true, (q, res) => this.#rollback(q, res)),
      r('GET', '/v1/services', false, (_q, res) => this.#services(res)),
      r('GET', '/v1/sidecars', false, (_q, res) => this.#sidecars(res)),
      r('GET', '/v1/stats', false, async (_q, res) => sendJson(res, 200, await collectStats(await this.listSidecars()))),
      r('POST', '/v1/sidecars', true, (q, res) => this.#register(q, res)),
      r('POST', '/v1/sidecars/([^/]+)/heartbeat', true, (_q, res, _u, p) => this.#heartbeat(res, p[0]!)),
      r('POST', '/v1/sidecars/([^/]+)/ack', true, (q, res, _u, p) => this.#ack(q, res, p[0]!)),
      r('DELETE', '/v1/sidecars/([^/]+)', true, (_q, res, _u, p) => this.#deregister(res, p[0]!)),
      r('GET', '/v1/watch', false, (q, res, url) => this.#watch(q, res, url)),
      r('GET', '/metrics', false, (_q, res) => this.#metrics(res)),
    ];
  }

  /** The node:http request listener. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#dispatch(req, res).catch((e: unknown) => this.#fail(req, res, e));
  };

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control-plane');
    const byPath = this.#routes.filter((x) => x.pattern.test(url.pathname));
    if (byPath.length === 0) throw meshError('NOT_FOUND', `no API resource at ${url.pathname}`, { path: url.pathname });
    const route = byPath.find((x) => x.method === req.method || (req.method === 'HEAD' && x.method === 'GET'));
    if (!route) {
      res.setHeader('allow', byPath.map((x) => x.method).join(', '));
      throw meshError('BAD_REQUEST', `${req.method} is not allowed on ${url.pathname} (allowed: ${byPath.map((x) => x.method).join(', ')})`, { method: req.method });
    }
    if (route.mutating) this.#authorize(req);
    const params = route.pattern.exec(url.pathname)!.slice(1).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        throw meshError('BAD_REQUEST', `malformed percent-encoding in ${url.pathname}`);
      }
    });
    await route.run(req, res, url, params);
  }

  #authorize(req: IncomingMessage): void {
    if (!this.#tokenDigest) return;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    // Comparing fixed-length digests keeps the comparison constant-time whatever the token length.
    if (!m || !timingSafeEqual(sha256(m[1]!), this.#tokenDigest)) {
      throw meshError('UNAUTHORIZED', m ? 'the bearer token is wrong' : 'this call changes state and needs "Authorization: Bearer <token>"');
    }
  }

  async #health(res: ServerResponse): Promise<void> {
    const cur = await this.#o.store.current();
    sendJson(res, 200, { status: 'ok', configVersion: cur?.version ?? null, snapshotHash: this.#o.pusher.current?.hash ?? null, watchers: this.#o.pusher.connectedCount });
  }

  async #getConfig(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const cur = await this.#o.store.current();
    if (!cur) throw meshError('NOT_FOUND', 'the control plane has no config yet: PUT /v1/config (meshlet ctl apply -f FILE)');
    sendVersion(req, res, url, cur);
  }

  async #putConfig(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const expected = url.searchParams.get('expectedVersion');
    let expectedVersion: number | undefined;
    if (expected !== null) {
      if (!/^\d{1,15}$/.test(expected)) throw meshError('BAD_REQUEST', `expectedVersion must be a whole number, got "${expected}"`, { expectedVersion: expected });
      expectedVersion = Number(expected);
    }
    const text = await this.#readText(req);
    const cur = await this.#o.store.current();
    if (cur && cur.text === text && (expectedVersion === undefined || expectedVersion === cur.version)) {
      // Re-applying the same text is a no-op (it was valid when stored), so `ctl apply` is
      // idempotent, history stays readable and no YAML is parsed for nothing.
      sendJson(res, 200, { ...meta(cur), unchanged: true });
      return;
    }
    const parsed = parseMeshConfig(text);
    if (!parsed.ok) throw configInvalid(parsed.violations);
    const v = await this.#o.store.put({ config: parsed.input, text, author: headerText(req, 'x-meshlet-author') || 'anonymous', note: headerText(req, 'x-meshlet-note') }, expectedVersion);
    this.#o.log.info({ version: v.version, author: v.author }, 'config accepted');
    sendJson(res, 201, { ...meta(v), unchanged: false });
  }

  async #validate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = parseMeshConfig(await this.#readText(req));
    if (!parsed.ok) throw configInvalid(parsed.violations);
    sendJson(res, 200, { ok: true, services: Object.keys(parsed.input.services).length, routes: parsed.input.routes?.length ?? 0 });
  }

  async #history(res: ServerResponse, url: URL): Promise<void> {
    const limit = url.searchParams.get('limit');
    if (limit !== null && !/^\d{1,6}$/.test(limit)) throw meshError('BAD_REQUEST', `limit must be a whole number, got "${limit}"`);
    const versions = await this.#o.store.history(limit === null ? undefined : Number(limit));
    const current = versions[0]?.version ?? null;
    sendJson(res, 200, { current, versions: versions.map(meta) });
  }

  async #version(req: IncomingMessage, res: ServerResponse, url: URL, n: number): Promise<void> {
    const v = await this.#o.store.get(n);
    if (!v) throw meshError('NOT_FOUND', `config version ${n} is not in history`, { version: n });
    sendVersion(req, res, url, v);
  }

  async #rollback(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseBody(rollbackBody, await this.#readJson(req));
    const v = await this.#o.store.rollback(body.version, { author: headerText(req, 'x-meshlet-author') || 'anonymous', note: body.note ?? headerText(req, 'x-meshlet-note') }, body.expectedVersion);
    this.#o.log.info({ version: v.version, rollbackOf: body.version, author: v.author }, 'config rolled back');
    sendJson(res, 201, meta(v));
  }

  async #services(res: ServerResponse): Promise<void> {
    const cur = await this.#o.store.current();
    const instances = await this.#o.store.instances();
    const discovered = this.#o.discovered();
    const names = new Set([...Object.keys(cur?.config.services ?? {}), ...instances.map((i) => i.service), ...discovered.keys()]);
    const services = [...names].sort().map((name) => {
      const def = cur?.config.services[name];
      const endpoints = [
        ...(def?.endpoints ?? []).map((e) => ({ address: e.address, weight: e.weight ?? 1, labels: e.labels ?? {}, source: 'static', health: 'unchecked' })),
        ...instances
          .filter((i) => i.service === name && i.address !== null)
          .map((i) => ({ address: i.address, weight: 1, labels: i.labels, source: 'registered', health: 'up', sidecar: i.id, lastHeartbeatAt: i.lastHeartbeatAt })),
        ...(discovered.get(name) ?? []).map((e) => ({ address: e.address, weight: e.weight, labels: e.labels, source: e.source, health: e.stale ? 'stale' : 'up' })),
      ];
      return { name, configured: def !== undefined, endpoints };
    });
    sendJson(res, 200, { configVersion: cur?.version ?? null, services });
  }

  async #sidecars(res: ServerResponse): Promise<void> {
    sendJson(res, 200, { snapshot: this.#o.pusher.current ? { version: this.#o.pusher.current.version, hash: this.#o.pusher.current.hash } : null, sidecars: await this.listSidecars() });
  }

  /** Registered instances joined with their push state (watchers that never registered included). */
  async listSidecars(): Promise<Array<Record<string, unknown>>> {
    const instances = new Map<string, InstanceRecord>((await this.#o.store.instances()).map((i) => [i.id, i]));
    const states = new Map(this.#o.pusher.states().map((s) => [s.id, s]));
    const ids = [...new Set([...instances.keys(), ...states.keys()])].sort();
    return ids.map((id) => {
      const i = instances.get(id);
      const s = states.get(id) ?? this.#o.pusher.state(id);
      return {
        id,
        service: i?.service ?? null,
        address: i?.address ?? null,
        labels: i?.labels ?? {},
        adminAddress: i?.adminAddress ?? null,
        registered: i !== undefined,
        lastHeartbeatAt: i?.lastHeartbeatAt ?? null,
        connected: s?.connected ?? false,
        lastSeen: s?.lastSeen ?? i?.lastHeartbeatAt ?? null,
        status: s?.status ?? (this.#o.pusher.current ? 'stale' : 'no-config'),
        sent: s?.sent ?? null,
        applied: s?.applied ?? null,
        lastRefusal: s?.lastRefusal ?? null,
      };
    });
  }

  async #register(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseBody(registrationBody, await this.#readJson(req));
    const rec = await this.#o.store.register(body, this.#o.instanceTtlMs);
    this.#o.pusher.seen(rec.id);
    // The watch that follows then starts from a snapshot that already lists this instance.
    await this.#o.pusher.settled();
    this.#o.log.info({ sidecar: rec.id, service: rec.service, address: rec.address }, 'sidecar registered');
    sendJson(res, 201, { ...rec, heartbeatMs: Math.max(100, Math.floor(this.#o.instanceTtlMs / 3)) });
  }

  async #heartbeat(res: ServerResponse, id: string): Promise<void> {
    const rec = await this.#o.store.heartbeat(id);
    this.#o.pusher.seen(id);
    sendJson(res, 200, rec);
  }

  async #deregister(res: ServerResponse, id: string): Promise<void> {
    if (!(await this.#o.store.deregister(id))) throw meshError('NOT_FOUND', `sidecar "${id}" is not registered`, { id });
    this.#o.log.info({ sidecar: id }, 'sidecar deregistered');
    res.writeHead(204).end();
  }

  async #ack(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = parseBody(ackBody, await this.#readJson(req));
    const state = this.#o.pusher.ack(id, body);
    if (!body.ok) this.#o.log.warn({ sidecar: id, version: body.version, hash: body.hash, reason: body.reason }, 'sidecar refused a snapshot');
    sendJson(res, 200, state);
  }

  async #watch(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const id = url.searchParams.get('sidecar') ?? '';
    if (!SIDECAR_ID.test(id)) throw meshError('BAD_REQUEST', 'watch needs ?sidecar=ID (1-253 characters of A-Z a-z 0-9 . _ : @ - [ ])', { sidecar: id });
    const lastEventId = firstHeader(req.headers['last-event-id']);
    const hash = url.searchParams.get('hash') ?? undefined;
    const version = url.searchParams.get('version') ?? undefined;
    this.#o.pusher.attach(id, res, {
      received: lastEventId ?? hash,
      ...(hash !== undefined && version !== undefined ? { applied: { hash, version } } : {}),
    });
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const text = await this.#o.metrics.metrics();
    res.writeHead(200, { 'content-type': this.#o.metrics.contentType }).end(text);
  }

  async #readText(req: IncomingMessage): Promise<string> {
    const limit = this.#o.maxBodyBytes ?? 1024 * 1024;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) throw meshError('REQUEST_TOO_LARGE', `the body is ${declared} bytes; the limit is ${limit}`, { limit });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > limit) throw meshError('REQUEST_TOO_LARGE', `the body exceeds the limit of ${limit} bytes`, { limit });
      chunks.push(c);
    }
    const buf = Buffer.concat(chunks);
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
    try {
      return text.decode(buf);
    } catch {
      throw meshError('BAD_REQUEST', 'the body is not valid UTF-8');
    }
  }

  async #readJson(req: IncomingMessage): Promise<unknown> {
    const text = await this.#readText(req);
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw meshError('BAD_REQUEST', `the body is not valid JSON: ${(e as Error).message}`);
    }
  }

  #fail(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    const err = isMeshError(e) ? e : new MeshError('INTERNAL', 'internal error', { cause: e });
    if (err.code === 'INTERNAL') this.#o.log.error({ err: e, method: req.method, url: req.url }, 'API call failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // An unread body would otherwise keep the connection busy; close it instead of draining up to the cap.
    if (!req.complete) res.setHeader('connection', 'close');
    res.writeHead(err.status, { 'content-type': 'application/json', 'x-meshlet-error': err.code }).end(errorBody(err));
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function headerText(req: IncomingMessage, name: string): string {
  const raw = firstHeader(req.headers[name]) ?? '';
  // Header values are Latin-1 on the wire; clients send other text percent-encoded.
  try {
    return decodeURIComponent(raw).slice(0, 1024);
  } catch {
    return raw.slice(0, 1024);
  }
}

function configInvalid(violations: ReadonlyArray<{ path: string; message: string; line?: number; column?: number }>): MeshError {
  return meshError('CONFIG_INVALID', `the config has ${violations.length} violation${violations.length === 1 ? '' : 's'}; nothing was changed`, { violations });
}

function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  throw meshError('BAD_REQUEST', `invalid body: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
}

function meta(v: ConfigVersion): Record<string, unknown> {
  return { version: v.version, author: v.author, note: v.note, createdAt: v.createdAt, ...(v.rollbackOf !== undefined ? { rollbackOf: v.rollbackOf } : {}) };
}

/** A version as JSON (meta + config + text), or its original text when YAML is asked for. */
function sendVersion(req: IncomingMessage, res: ServerResponse, url: URL, v: ConfigVersion): void {
  const wantsYaml = url.searchParams.get('format') === 'yaml' || /\b(application|text)\/(x-)?yaml\b/.test(req.headers.accept ?? '');
  if (wantsYaml) {
    res.writeHead(200, { 'content-type': 'application/yaml; charset=utf-8', 'x-meshlet-config-version': String(v.version) }).end(v.text || toYaml(v.config));
    return;
  }
  sendJson(res, 200, { ...meta(v), config: v.config, text: v.text }, { 'x-meshlet-config-version': String(v.version) });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

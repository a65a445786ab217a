// Starts a real standalone sidecar (`node dist/cli/meshlet.js sidecar --config FILE`) on loopback
// ports chosen at run time, and waits until every listener logged its address and /ready says 200.
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { spawnMeshlet, type Proc } from './process.js';
import { waitFor } from './wait.js';

export interface SidecarHandle {
  proc: Proc;
  /** 127.0.0.1:PORT of each listener. */
  outbound: string;
  inbound: string | undefined;
  admin: string;
  /** Local port per declared upstream (`--upstream users=127.0.0.1:0`), by service. */
  upstreams: Record<string, string>;
  configFile: string;
  /** Replaces the config file atomically (write + rename, as editors do). */
  writeConfig(config: object | string): void;
  /** GET on the admin listener, parsed as JSON. */
  adminJson(p: string): Promise<{ status: number; body: any }>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartSidecarOptions {
  /** The mesh config: an object (written as YAML) or YAML text. */
  config: object | string;
  /** Extra flags, e.g. ['--app', '127.0.0.1:9000', '--upstream', 'users=127.0.0.1:0']. */
  args?: string[];
  env?: Record<string, string>;
  /** --service (default "orders"). */
  service?: string;
  /** Wait for /ready (default true). */
  waitReady?: boolean;
}

const toYaml = (c: object | string): string => (typeof c === 'string' ? c : stringify(c));

export async function startSidecar(opts: StartSidecarOptions): Promise<SidecarHandle> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-sidecar-'));
  const configFile = path.join(dir, 'mesh.yaml');
  writeFileSync(configFile, toYaml(opts.config));
  const args = opts.args ?? [];
  const hasApp = args.includes('--app') || opts.env?.MESHLET_APP !== undefined;
  const upstreamNames: string[] = [];
  args.forEach((a, i) => {
    if (a === '--upstream' && args[i + 1]) upstreamNames.push(args[i + 1]!.split('=')[0]!);
  });
  const proc = spawnMeshlet(
    [
      'sidecar',
      '--service', opts.service ?? 'orders',
      '--config', configFile,
      '--outbound', '127.0.0.1:0',
      '--inbound', '127.0.0.1:0',
      '--admin', '127.0.0.1:0',
      '--data-dir', path.join(dir, 'data'),
      '--access-log', 'off',
      ...args,
    ],
    { env: opts.env },
  );
  const addressOf = async (listener: string): Promise<string> =>
    String((await proc.waitForLog((l) => l.msg === 'listening' && l.listener === listener, 90_000)).address);

  const outbound = await addressOf('outbound');
  const admin = await addressOf('admin');
  const inbound = hasApp ? await addressOf('inbound') : undefined;
  const upstreams: Record<string, string> = {};
  for (const name of upstreamNames) upstreams[name] = await addressOf(`upstream:${name}`);

  const adminJson = async (p: string): Promise<{ status: number; body: any }> => {
    const r = await fetch(`http://${admin}${p}`);
    const text = await r.text();
    return { status: r.status, body: text.startsWith('{') ? JSON.parse(text) : text };
  };
  if (opts.waitReady !== false) await waitFor(async () => (await adminJson('/ready')).status === 200, { timeoutMs: 30_000, what: 'sidecar /ready' });

  return {
    proc,
    outbound,
    inbound,
    admin,
    upstreams,
    configFile,
    writeConfig: (config) => {
      const tmp = `${configFile}.tmp-${process.pid}`;
      writeFileSync(tmp, toYaml(config));
      renameSync(tmp, configFile);
    },
    adminJson,
    stop: (signal = 'SIGTERM') => proc.stop(signal),
  };
}

export interface CallResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json<T = any>(): T;
}

// One keep-alive agent per sidecar address, like an app's HTTP client.
const agents = new Map<string, http.Agent>();

/** One HTTP request to `address` (a sidecar listener) naming `host` in the Host header, read whole. */
export function call(
  address: string,
  opts: { host?: string; path?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer; signal?: AbortSignal } = {},
): Promise<CallResult> {
  const colon = address.lastIndexOf(':');
  let agent = agents.get(address);
  if (!agent) agents.set(address, (agent = new http.Agent({ keepAlive: true, maxSockets: 64 })));
  return new Promise<CallResult>((resolve, reject) => {
    const req = http.request(
      {
        host: address.slice(0, colon),
        port: Number(address.slice(colon + 1)),
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: { ...(opts.host ? { host: opts.host } : {}), ...opts.headers },
        agent,
        signal: opts.signal,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Closes the keep-alive connections call() holds (call from afterAll). */
export function closeClients(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
}

/**
 * Runs `send(i)` for i = 0…total-1 with `concurrency` in flight, bounded in count and in time: it
 * stops starting new ones after `timeoutMs` and reports how many ran. Errors are collected, not thrown.
 */
export async function load<T>(
  opts: { total: number; concurrency: number; timeoutMs?: number; until?: () => boolean },
  send: (i: number) => Promise<T>,
): Promise<{ results: T[]; errors: unknown[]; started: number }> {
  const results: T[] = [];
  const errors: unknown[] = [];
  const stopAt = Date.now() + (opts.timeoutMs ?? 30_000);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.total && Date.now() < stopAt && !opts.until?.()) {
      const i = next++;
      try {
        results.push(await send(i));
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return { results, errors, started: next };
}

/** Sums the samples of one metric in a Prometheus exposition whose labels include every given label. */
export function metricSum(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface RawResponse {
  /** Everything the server sent before closing (or before `timeoutMs`). */
  raw: string;
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the connection. */
  closed: boolean;
}

/**
 * Writes raw bytes on a fresh TCP connection and collects the reply until the server closes the
 * connection or `timeoutMs` passes. For malformed HTTP that a normal client refuses to send.
 */
export function rawExchange(address: string, chunks: Array<string | Buffer>, opts: { timeoutMs?: number; gapMs?: number } = {}): Promise<RawResponse> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(address.slice(colon + 1)), address.slice(0, colon));
    const parts: Buffer[] = [];
    let closed = false;
    const finish = (): void => {
      clearTimeout(timer);
      const raw = Buffer.concat(parts).toString('latin1');
      const [head = '', ...rest] = raw.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      socket.destroy();
      resolve({ raw, status: m ? Number(m[1]) : undefined, headers, body: rest.join('\r\n\r\n'), closed });
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 10_000);
    socket.on('data', (c: Buffer) => parts.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? ((closed = true), finish()) : reject(e)));
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('connect', async () => {
      for (const [i, c] of chunks.entries()) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs)); // pacing a slow client is the behaviour under test
        if (!socket.destroyed) socket.write(c);
      }
    });
  });
}

// Shared pieces of the control-plane end-to-end tests: a real `meshlet control-plane`, real
// `meshlet sidecar` processes, small real HTTP apps, and `meshlet ctl` runs, all on loopback ports
// chosen at run time.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MESHLET_BIN, ROOT, spawnMeshlet, type Proc } from './harness/process.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `meshlet-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export const listeningAddress = async (p: Proc, listener: string): Promise<string> => String((await p.waitForLog((l) => l.msg === 'listening' && l.listener === listener, 90_000)).address);

export interface ControlPlaneProc {
  proc: Proc;
  url: string;
  port: number;
}

export async function startControlPlane(opts: { dataDir: string; token?: string; tokenFile?: string; instanceTtl?: string; config?: string; port?: number; extra?: string[] }): Promise<ControlPlaneProc> {
  const args = ['control-plane', '--data-dir', opts.dataDir, '--listen', `127.0.0.1:${opts.port ?? 0}`];
  if (opts.token !== undefined) {
    const file = path.join(opts.dataDir, '..', `token-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(file, `${opts.token}\n`);
    args.push('--token-file', file);
  }
  if (opts.instanceTtl) args.push('--instance-ttl', opts.instanceTtl);
  if (opts.config) args.push('--config', opts.config);
  args.push(...(opts.extra ?? []));
  const proc = spawnMeshlet(args);
  const address = await listeningAddress(proc, 'api');
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return { proc, url: `http://127.0.0.1:${port}`, port };
}

export interface SidecarProc {
  proc: Proc;
  outbound: string;
  admin: string;
  inbound?: string;
}

export async function startSidecar(opts: { controlPlane: string; service: string; dataDir: string; app?: string; token?: string; labels?: string; id?: string }): Promise<SidecarProc> {
  const args = ['sidecar', '--service', opts.service, '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--control-plane', opts.controlPlane, '--data-dir', opts.dataDir, '--access-log', 'off'];
  if (opts.app) args.push('--app', opts.app, '--inbound', '127.0.0.1:0');
  if (opts.token) args.push('--token', opts.token);
  if (opts.labels) args.push('--labels', opts.labels);
  if (opts.id) args.push('--id', opts.id);
  const proc = spawnMeshlet(args);
  const outbound = await listeningAddress(proc, 'outbound');
  const admin = await listeningAddress(proc, 'admin');
  const inbound = opts.app ? await listeningAddress(proc, 'inbound') : undefined;
  return { proc, outbound, admin, inbound };
}

/** The snapshot a sidecar has in force (its admin /config). */
export async function sidecarConfig(s: SidecarProc): Promise<{ version: string; hash: string; endpoints: Record<string, Array<{ address: string }>> } | undefined> {
  const res = await fetch(`http://${s.admin}/config`);
  return res.ok ? ((await res.json()) as { version: string; hash: string; endpoints: Record<string, Array<{ address: string }>> }) : undefined;
}

export interface App {
  server: Server;
  address: string;
  name: string;
  close: () => Promise<void>;
}

/** A real HTTP app that answers every request with its name. */
export async function startApp(name: string): Promise<App> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    address,
    name,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** GET through a sidecar's outbound listener, addressing `service` by Host. */
// node:http, because fetch does not let a caller set Host.
export function callThrough(s: SidecarProc, service: string, p = '/', agent?: Agent): Promise<{ status: number; body: string }> {
  const [host, port] = [s.outbound.slice(0, s.outbound.lastIndexOf(':')), Number(s.outbound.slice(s.outbound.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path: p, headers: { host: service }, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error('request timed out')));
    req.once('error', reject);
    req.end();
  });
}

/** Runs `meshlet ctl …` to completion. */
export function ctl(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MESHLET_BIN, 'ctl', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

export async function api<T = any>(base: string, p: string, init: RequestInit = {}): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(`${base}${p}`, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const body = (res.headers.get('content-type') ?? '').includes('json') && text ? (JSON.parse(text) as T) : (text as T);
  return { status: res.status, body, headers: res.headers };
}

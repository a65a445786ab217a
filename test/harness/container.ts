// Real containers in tests, with podman (no Docker engine runs on our machines; see
// ../shared/TESTING.md): is podman usable, make the local base image, build the real Dockerfile,
// run and inspect containers. Everything shells out to the podman CLI.
import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { ROOT } from './process.js';

export const BASE_IMAGE = 'localhost/meshlet-base:node20';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (never throws on a non-zero exit; check `code`). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const t = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: 127, stdout, stderr: stderr + e.message });
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export const podman = (args: string[], timeoutMs = 60_000) => run('podman', args, { timeoutMs });

/** Whether podman can run containers here, and if not, why. */
export async function podmanStatus(): Promise<{ ok: true } | { ok: false; why: string }> {
  const version = await new Promise<string | undefined>((resolve) => execFile('podman', ['--version'], (e, out) => resolve(e ? undefined : out.trim())));
  if (!version) return { ok: false, why: 'the podman command is not installed (scripts/install-deps.sh installs it as root)' };
  const info = await podman(['info', '--format', '{{.Host.OCIRuntime.Name}}'], 30_000);
  if (info.code !== 0) return { ok: false, why: `\`podman info\` fails: ${info.stderr.trim().split('\n').slice(-3).join(' ')}` };
  return { ok: true };
}

/** Makes the local base image (cached; minutes the first time). Throws with the script's output on failure. */
export async function ensureBaseImage(): Promise<void> {
  const r = await run('sh', [path.join(ROOT, 'scripts/container-base.sh')], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`scripts/container-base.sh failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
}

/** Builds the repository's Dockerfile on the local base (docker format: the OCI format drops HEALTHCHECK). */
export async function buildImage(tag: string): Promise<void> {
  const r = await run('podman', ['build', '--format', 'docker', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '-t', tag, '-f', path.join(ROOT, 'Dockerfile'), ROOT], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`podman build failed (${r.code}):\n${(r.stdout + r.stderr).split('\n').slice(-40).join('\n')}`);
}

export async function imageSizeBytes(tag: string): Promise<number> {
  const r = await podman(['image', 'inspect', '--format', '{{.Size}}', tag]);
  return Number(r.stdout.trim());
}

/** A loopback port free right now (for a container on the host network, which cannot report one back before it is needed). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The JSON log lines a container printed so far. */
export async function containerLogs(name: string): Promise<Array<Record<string, unknown>>> {
  const r = await podman(['logs', name]);
  const out: Array<Record<string, unknown>> = [];
  for (const line of (r.stdout + '\n' + r.stderr).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* not JSON */
    }
  }
  return out;
}

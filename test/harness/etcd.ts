// Starts real etcd (Debian's etcd-server, /usr/bin/etcd) for end-to-end tests: one member or an
// N-member cluster on free loopback ports, in a temp data dir. Readiness is polled on /health;
// members are killed by PID; stop() kills everything and removes the data.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnProcess, type Proc } from './process.js';
import { waitFor } from './wait.js';

export const ETCD_BIN = process.env.MESHLET_TEST_ETCD ?? '/usr/bin/etcd';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  proc: Proc;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Client URLs of every member (alive or not), for a client's host list. */
  readonly clientUrls: string[];
  /** SIGKILLs one member by PID and waits for it to exit. */
  kill(index: number): Promise<void>;
  /** Restarts a killed member on its old ports and data dir (it rejoins the cluster). */
  restart(index: number): Promise<void>;
  /** True when the member answers /health with health "true". */
  healthy(index: number): Promise<boolean>;
  /** Index of the current raft leader among the live members, from /v3/maintenance/status. */
  leader(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Ports that were free a moment ago: all are held open together so one call never returns the
 * same port twice, then released for the server to bind. A race with another process is possible
 * but rare on loopback; startEtcd retries once on a bind failure.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

async function health(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

export async function startEtcd(opts: { members?: number; timeoutMs?: number } = {}): Promise<EtcdCluster> {
  const n = opts.members ?? 1;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-etcd-'));
  const ports = await freePorts(2 * n);
  const specs = Array.from({ length: n }, (_, i) => ({
    name: `m${i}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: path.join(dir, `m${i}`),
  }));
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',');
  const spawnMember = (s: (typeof specs)[number]): Proc =>
    spawnProcess(ETCD_BIN, [
      '--logger=zap',
      '--log-level=warn',
      `--name=${s.name}`,
      `--data-dir=${s.dataDir}`,
      `--listen-client-urls=${s.clientUrl}`,
      `--advertise-client-urls=${s.clientUrl}`,
      `--listen-peer-urls=${s.peerUrl}`,
      `--initial-advertise-peer-urls=${s.peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=meshlet-test-${path.basename(dir)}`,
      // Fast elections so a killed leader is replaced in well under a second (TESTING.md).
      '--heartbeat-interval=20',
      '--election-timeout=200',
    ]);
  const members: EtcdMember[] = specs.map((s) => ({ name: s.name, clientUrl: s.clientUrl, peerUrl: s.peerUrl, proc: spawnMember(s) }));
  const cluster: EtcdCluster = {
    members,
    clientUrls: members.map((m) => m.clientUrl),
    async kill(i) {
      const m = members[i]!;
      if (m.proc.child.exitCode === null && m.proc.child.signalCode === null) {
        process.kill(m.proc.child.pid!, 'SIGKILL');
        await m.proc.exited;
      }
    },
    async restart(i) {
      await cluster.kill(i);
      members[i]!.proc = spawnMember(specs[i]!);
      await waitFor(() => health(members[i]!.clientUrl), { timeoutMs: opts.timeoutMs ?? 20_000, what: `etcd ${members[i]!.name} healthy` });
    },
    healthy: (i) => health(members[i]!.clientUrl),
    async leader() {
      return waitFor(
        async () => {
          for (let i = 0; i < members.length; i++) {
            const m = members[i]!;
            if (m.proc.child.exitCode !== null || m.proc.child.signalCode !== null) continue;
            try {
              const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
              const st = (await res.json()) as { header?: { member_id?: string }; leader?: string };
              if (st.leader && st.header?.member_id === st.leader) return i;
            } catch {
              /* member not answering: try the next */
            }
          }
          return undefined;
        },
        { timeoutMs: 10_000, what: 'an etcd leader' },
      );
    },
    async stop() {
      await Promise.all(members.map((m) => m.proc.stop('SIGKILL', 1000)));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(async () => (await Promise.all(members.map((m) => health(m.clientUrl)))).every(Boolean), {
      timeoutMs: opts.timeoutMs ?? 20_000,
      intervalMs: 50,
      what: `etcd (${n} member${n > 1 ? 's' : ''}) healthy`,
    });
  } catch (e) {
    const out = members.map((m) => `--- ${m.name} ---\n${m.proc.lines.slice(-20).join('\n')}`).join('\n');
    await cluster.stop();
    throw new Error(`${(e as Error).message}\n${out}`);
  }
  return cluster;
}

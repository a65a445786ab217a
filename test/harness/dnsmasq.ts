// Starts a real dnsmasq (Debian's dnsmasq-base, /usr/sbin/dnsmasq) serving SRV and A/AAAA records
// from a generated conf on a free loopback port, UDP and TCP. dnsmasq re-reads hosts files on
// SIGHUP but never its conf (where srv-host lives), so setRecords() restarts it on the same port
// with a new conf; a resolver pointed at it sees a short outage (ECONNREFUSED), then the new records.
import dgram from 'node:dgram';
import dns from 'node:dns';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnProcess, type Proc } from './process.js';
import { waitFor } from './wait.js';

export const DNSMASQ_BIN = process.env.MESHLET_TEST_DNSMASQ ?? '/usr/sbin/dnsmasq';

export interface SrvRecord {
  /** e.g. _http._tcp.users.mesh.test */
  name: string;
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface HostRecord {
  name: string;
  ipv4?: string;
  ipv6?: string;
  /** Per-record TTL; local-ttl otherwise. */
  ttl?: number;
}

export interface DnsRecords {
  srv?: SrvRecord[];
  hosts?: HostRecord[];
}

export interface Dnsmasq {
  readonly port: number;
  /** "127.0.0.1:PORT", for Resolver.setServers and discovery.dns.servers. */
  readonly server: string;
  /** Replaces every record: restarts dnsmasq on the same port with a new conf, waits until it answers. */
  setRecords(records: DnsRecords): Promise<void>;
  /** Stops the server (queries then fail) without removing its files; start() brings it back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its files. */
  close(): Promise<void>;
}

/** A port free on loopback for both UDP and TCP right now. */
async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (tcpFree) return port;
  }
  throw new Error('no free loopback port for both UDP and TCP');
}

function confText(o: { port: number; ttl: number; domain: string; dir: string; records: DnsRecords }): string {
  const lines = [
    `port=${o.port}`,
    'listen-address=127.0.0.1',
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'no-negcache',
    `local=/${o.domain}/`,
    `local-ttl=${o.ttl}`,
    `pid-file=${path.join(o.dir, 'dnsmasq.pid')}`,
    'log-facility=-',
  ];
  for (const s of o.records.srv ?? []) lines.push(`srv-host=${s.name},${s.target},${s.port},${s.priority ?? 0},${s.weight ?? 0}`);
  for (const h of o.records.hosts ?? []) {
    const addrs = [h.ipv4, h.ipv6].filter((a): a is string => a !== undefined);
    lines.push(`host-record=${[h.name, ...addrs, ...(h.ttl !== undefined ? [String(h.ttl)] : [])].join(',')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Answers a query (any answer, including NXDOMAIN) proves the server is up. */
async function answers(server: string, domain: string): Promise<boolean> {
  const r = new dns.promises.Resolver({ timeout: 300, tries: 1 });
  r.setServers([server]);
  try {
    await r.resolve4(`readiness-probe.${domain}`);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === dns.NOTFOUND || code === dns.NODATA;
  }
}

export async function startDnsmasq(opts: { records?: DnsRecords; ttl?: number; domain?: string } = {}): Promise<Dnsmasq> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-dnsmasq-'));
  const port = await freeDnsPort();
  const server = `127.0.0.1:${port}`;
  const domain = opts.domain ?? 'mesh.test';
  const ttl = opts.ttl ?? 1;
  const confFile = path.join(dir, 'dnsmasq.conf');
  let records = opts.records ?? {};
  let proc: Proc | undefined;

  const start = async (): Promise<void> => {
    await writeFile(confFile, confText({ port, ttl, domain, dir, records }));
    proc = spawnProcess(DNSMASQ_BIN, ['--keep-in-foreground', `--conf-file=${confFile}`, `--user=${os.userInfo().username}`]);
    const p = proc;
    await waitFor(
      async () => {
        if (p.child.exitCode !== null) throw new Error(`dnsmasq exited ${p.child.exitCode}: ${p.output()}`);
        return answers(server, domain);
      },
      { timeoutMs: 10_000, what: `dnsmasq answering on ${server}` },
    );
  };
  const stop = async (): Promise<void> => {
    await proc?.stop('SIGTERM', 2000);
    proc = undefined;
  };
  await start();
  return {
    port,
    server,
    start,
    stop,
    async setRecords(r) {
      records = r;
      await stop();
      await start();
    },
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

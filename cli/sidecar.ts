// `meshlet sidecar`: standalone from a YAML file (--config, reloaded on change or SIGHUP) or live
// from a control plane (--control-plane URL[,URL…]). Every flag has a MESHLET_* twin.
import { readFileSync, watch } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { formatHostPort, parseHostPort, type HostPort } from '../core/address.js';
import { parseMeshConfig } from '../core/config/parse.js';
import { formatViolation } from '../core/config/violation.js';
import { parseDuration } from '../core/duration.js';
import { createLogger, type Logger } from '../core/log.js';
import { makeSnapshot } from '../core/snapshot.js';
import type { SelfRegistration } from '../control-plane/discovery/self-registration.js';
import { ControlPlaneClient } from '../sidecar/control-plane-client.js';
import { Sidecar, type SidecarOptions } from '../sidecar/sidecar.js';
import { createSidecarTelemetry } from '../core/telemetry/sidecar-observer.js';

interface SidecarArgs {
  service: string;
  app?: string;
  inbound: string;
  outbound: string;
  admin: string;
  upstream: string[];
  config?: string;
  controlPlane?: string;
  token?: string;
  dataDir: string;
  labels?: string;
  id?: string;
  advertise?: string;
  drainTimeout: string;
  maxHeaderSize: number;
  headersTimeout: string;
  inboundMaxRequests: number;
  accessLog: string;
  registerEtcd?: string;
  registerConsul?: string;
  registerTtl: string;
}

const hostPort = (flag: string, v: string): HostPort => {
  // yargs turns a flag given twice into an array; say so instead of failing inside the parser.
  if (typeof v !== 'string') throw new Error(`--${flag}: given more than once (${JSON.stringify(v)}); give it once`);
  const hp = parseHostPort(v);
  if (!hp) throw new Error(`--${flag}: expected HOST:PORT, got ${JSON.stringify(v)}`);
  return hp;
};
const duration = (flag: string, v: string): number => {
  const ms = parseDuration(/^\d+$/.test(v) ? Number(v) : v);
  if (ms === undefined) throw new Error(`--${flag}: expected a duration such as 10s or 500ms, got ${JSON.stringify(v)}`);
  return ms;
};

export function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`--labels: expected k=v[,k=v…], got ${JSON.stringify(part)}`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** The address peers should call: --advertise, else the inbound address with a wildcard host made concrete. */
function advertised(bound: string, flag: string | undefined): string {
  if (flag) return flag;
  const hp = parseHostPort(bound)!;
  if (hp.host !== '0.0.0.0' && hp.host !== '::') return bound;
  for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return formatHostPort({ host: a.address, port: hp.port });
  return formatHostPort({ host: '127.0.0.1', port: hp.port });
}

function loadFile(file: string): ReturnType<typeof parseMeshConfig> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, violations: [{ path: '(file)', message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }] };
  }
  return parseMeshConfig(text);
}

async function run(args: ArgumentsCamelCase<SidecarArgs>): Promise<void> {
  const log: Logger = createLogger('sidecar');
  const registerTtlMs = duration('register-ttl', args.registerTtl);
  if (!args.config && !args.controlPlane) throw new Error('give --config FILE (standalone) or --control-plane URL');
  if (args.config && args.controlPlane) throw new Error('give either --config or --control-plane, not both');

  // A standalone config is checked before anything binds: a bad file stops start-up with every violation.
  let initial: ReturnType<typeof parseMeshConfig> | undefined;
  if (args.config) {
    initial = loadFile(args.config);
    if (!initial.ok) {
      process.stderr.write(`meshlet sidecar: ${args.config} is invalid (${initial.violations.length} problem${initial.violations.length === 1 ? '' : 's'}):\n`);
      for (const v of initial.violations) process.stderr.write(`  ${formatViolation(v, args.config)}\n`);
      process.exitCode = 1;
      return;
    }
  }

  // OTEL_* variables configure trace export; --access-log picks where request lines go.
  const telemetry = await createSidecarTelemetry({
    service: args.service,
    accessLog: args.accessLog !== 'off',
    accessLogFile: args.accessLog === 'off' || args.accessLog === 'stdout' ? undefined : args.accessLog,
  });
  const opts: SidecarOptions = {
    service: args.service,
    app: args.app ? hostPort('app', args.app) : undefined,
    inbound: hostPort('inbound', args.inbound),
    outbound: hostPort('outbound', args.outbound),
    admin: hostPort('admin', args.admin),
    upstreams: args.upstream.map((u) => {
      const eq = u.indexOf('=');
      if (eq <= 0) throw new Error(`--upstream: expected SERVICE=HOST:PORT, got ${JSON.stringify(u)}`);
      return { service: u.slice(0, eq), listen: hostPort('upstream', u.slice(eq + 1)) };
    }),
    limits: { maxHeaderSize: args.maxHeaderSize, headersTimeoutMs: duration('headers-timeout', args.headersTimeout) },
    inboundMaxRequests: args.inboundMaxRequests,
    drainTimeoutMs: duration('drain-timeout', args.drainTimeout),
    observer: telemetry,
    metrics: async () => ({ contentType: telemetry.registry.contentType, body: await telemetry.registry.metrics() }),
    log,
  };
  const labels = parseLabels(args.labels);
  const sidecar = new Sidecar(opts);
  let client: ControlPlaneClient | undefined;
  let stopWatching = (): void => {};
  let registration: SelfRegistration | undefined;
  // Installed before any listener announces itself: without a listener a SIGTERM kills outright.
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining');
    // Deregister first, so peers stop sending before we stop accepting.
    await Promise.all([
      client?.deregister().catch((e: Error) => log.warn({ err: e.message }, 'deregister failed')),
      registration?.stop().catch((e: Error) => log.warn({ err: e.message }, 'deregister from etcd/Consul failed')),
    ]);
    stopWatching();
    await sidecar.drain();
    await client?.stop();
    await telemetry.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  if (initial?.ok) {
    const file = args.config!;
    const applyFile = async (parsed: ReturnType<typeof parseMeshConfig>): Promise<void> => {
      if (!parsed.ok) {
        log.error({ file, violations: parsed.violations.map((v) => formatViolation(v, file)) }, 'config file refused; the previous config keeps serving');
        return;
      }
      const hash8 = createHash('sha256').update(JSON.stringify(parsed.input)).digest('hex').slice(0, 8);
      await sidecar.applySnapshot(makeSnapshot(`file:${hash8}`, parsed.input, {}));
    };
    await applyFile(initial);
    // Editors replace files rather than write them in place: watch the directory, debounce.
    let timer: NodeJS.Timeout | undefined;
    const reload = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => void applyFile(loadFile(file)), 100);
    };
    // Any change in the directory re-reads the file (unchanged content is a no-op: same hash). Not only
    // events naming the file: Kubernetes ConfigMap volumes update by swapping a `..data` symlink.
    const watcher = watch(path.dirname(path.resolve(file)), () => reload());
    process.on('SIGHUP', reload);
    stopWatching = () => {
      watcher.close();
      clearTimeout(timer);
    };
  }

  // With a control plane there is no file to re-read, but SIGHUP's default action would kill the
  // sidecar without a drain (e.g. when the terminal that started it closes). Installed before the
  // listeners announce themselves, so a signal sent after "listening" always finds it.
  if (!args.config) process.on('SIGHUP', () => log.info('SIGHUP ignored: the config comes from the control plane'));

  await sidecar.start();

  if (args.controlPlane) {
    // Without an app behind it the sidecar serves no inbound traffic: it watches config, but is no endpoint.
    const inbound = sidecar.addresses.inbound;
    const address = inbound === undefined ? null : advertised(inbound, args.advertise);
    client = new ControlPlaneClient({
      urls: args.controlPlane.split(',').map((u) => u.trim()).filter(Boolean),
      token: args.token,
      sidecarId: args.id ?? `${args.service}-${address ?? `client-${sidecar.addresses.outbound ?? process.pid}`}`,
      service: args.service,
      instance: { address, labels },
      adminAddress: sidecar.addresses.admin ?? '',
      dataDir: args.dataDir,
      apply: (s) => sidecar.applySnapshot(s),
      log,
    });
    // Serve from the last snapshot we applied until the control plane answers (it may be down).
    const saved = await client.loadSaved();
    if (saved) {
      const r = await sidecar.applySnapshot(saved);
      log.info({ version: saved.version, applied: r.ok }, 'serving the saved snapshot until the control plane answers');
    }
    client.start();
  }

  // Users who already run etcd or Consul may register the instance there too (or instead).
  if (args.registerEtcd || args.registerConsul) {
    if (sidecar.addresses.inbound === undefined) throw new Error('--register-etcd / --register-consul need --app: without an app behind it this sidecar is no endpoint');
    const address = advertised(sidecar.addresses.inbound, args.advertise);
    // Loaded only when asked for: the etcd and Consul clients cost ~1.5 s of start-up CPU.
    const { startSelfRegistration } = await import('../control-plane/discovery/self-registration.js');
    registration = startSelfRegistration({
      service: args.service,
      id: args.id ?? `${args.service}-${address}`,
      address,
      labels,
      ttlSeconds: Math.max(1, Math.round(registerTtlMs / 1000)),
      etcdEndpoints: args.registerEtcd?.split(',').map((u) => u.trim()).filter(Boolean),
      consulAgent: args.registerConsul,
      log,
    });
  }

}

export const sidecarCommand: CommandModule<object, SidecarArgs> = {
  command: 'sidecar',
  describe: 'Run the sidecar beside a service (standalone with --config, or live from --control-plane)',
  builder: (y: Argv) =>
    y
      .option('service', { type: 'string', demandOption: true, describe: 'Name of the service this sidecar stands beside' })
      .option('app', { type: 'string', describe: 'HOST:PORT of the local app (inbound target)' })
      .option('inbound', { type: 'string', default: '0.0.0.0:15006', describe: 'Inbound listener (peers call the app through it)' })
      .option('outbound', { type: 'string', default: '127.0.0.1:15001', describe: 'Outbound listener (the app calls peers through it: HTTP_PROXY or Host header)' })
      .option('admin', { type: 'string', default: '127.0.0.1:15000', describe: 'Admin listener: /live /ready /config /endpoints /metrics' })
      .option('upstream', { type: 'string', array: true, default: [] as string[], describe: 'A local port per upstream: SERVICE=HOST:PORT (repeatable; env: comma-free, one per flag)' })
      .option('config', { type: 'string', describe: 'Standalone: mesh config YAML file (reloaded on change and on SIGHUP)' })
      .option('control-plane', { type: 'string', describe: 'Control plane URL(s), comma-separated, tried in order' })
      .option('token', { type: 'string', describe: 'Bearer token for the control plane' })
      .option('data-dir', { type: 'string', default: '.meshlet/sidecar', describe: 'Where the last applied snapshot is kept' })
      .option('labels', { type: 'string', describe: 'Instance labels k=v,k=v (subsets select on them)' })
      .option('id', { type: 'string', describe: 'Sidecar id (default SERVICE-ADDRESS)' })
      .option('advertise', { type: 'string', describe: 'HOST:PORT peers should call (default: the inbound address)' })
      .option('drain-timeout', { type: 'string', default: '10s', describe: 'How long requests in flight may finish on SIGTERM' })
      .option('max-header-size', { type: 'number', default: 16 * 1024, describe: 'Largest request header block accepted (bytes); larger gets 431' })
      .option('headers-timeout', { type: 'string', default: '10s', describe: 'Time a client has to send its request headers (slowloris guard)' })
      .option('register-etcd', { type: 'string', describe: 'Also register this instance in etcd (client URLs, comma-separated), under a lease' })
      .option('register-consul', { type: 'string', describe: 'Also register this instance with a Consul agent (HOST:PORT or URL), with a TTL check' })
      .option('register-ttl', { type: 'string', default: '10s', describe: 'Lease / TTL-check length for --register-etcd and --register-consul' })
      .option('access-log', { type: 'string', default: 'stdout', describe: 'Where access log lines go: stdout, off, or a FILE (written when the mesh config has telemetry.accessLog)' })
      .option('inbound-max-requests', { type: 'number', default: 1024, describe: 'Requests in flight to the local app before OVERFLOW' }) as unknown as Argv<SidecarArgs>,
  handler: async (args) => {
    try {
      await run(args);
    } catch (e) {
      process.stderr.write(`meshlet sidecar: ${(e as Error).message}\n`);
      process.exit(1);
    }
  },
};

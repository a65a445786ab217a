// The processes of `meshlet demo`, all on loopback ports chosen at run time: a control plane
// (embedded file store), three users instances (v1, v1, v2) and orders, each with its sidecar.
//
//   client ─► orders' sidecar inbound ─► orders ─► orders' sidecar outbound (Host: users)
//                                                   └─► users-N's sidecar inbound ─► users-N
import net from 'node:net';
import path from 'node:path';
import { formatHostPort, parseHostPort, type HostPort } from '../../core/address.js';
import { MESHLET_NODE_ENV, MESHLET_NODE_FLAGS } from '../../core/node-flags.js';
import { DemoChild } from './demo-child.js';

export interface UsersInstance {
  instance: string;
  version: string;
  /** The app itself (its fault knobs are here). */
  app: string;
  /** Its sidecar's inbound address: the endpoint other sidecars see. */
  inbound: string;
  admin: string;
}

export interface DemoTopologyOptions {
  /** dist/cli/meshlet.js */
  meshletBin: string;
  /** dist/demo-services */
  servicesDir: string;
  dataDir: string;
  meshConfigFile: string;
  usersVersions: readonly string[];
  startTimeoutMs: number;
  progress: (line: string) => void;
}

/** The environment children start with: ours, minus MESHLET_* and DEMO_* settings meant for the demo command itself. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHLET_') && !k.startsWith('DEMO_')) env[k] = v;
  return env;
}

/** A free loopback port (orders must know its sidecar's outbound, and its sidecar orders' address). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function getJson(url: string, timeoutMs = 2000): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Polls until `probe` returns a value; the error names `what` and the process to blame. */
async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string, blame?: DemoChild): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (blame && !blame.running) throw new Error(`${blame.name} exited while waiting for ${what}:\n${blame.tail()}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? ` (${last})` : ''}${blame ? `\n${blame.name} said:\n${blame.tail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export class DemoTopology {
  readonly #o: DemoTopologyOptions;
  readonly #children: DemoChild[] = [];
  readonly #env = childEnv();
  controlPlaneUrl = '';
  readonly users: UsersInstance[] = [];
  orders = { app: '', inbound: '', outbound: '', admin: '' };

  private constructor(opts: DemoTopologyOptions) {
    this.#o = opts;
  }

  /** Starts everything, or stops what it started and throws with the failing process's last lines. */
  static async start(opts: DemoTopologyOptions): Promise<DemoTopology> {
    const t = new DemoTopology(opts);
    // If the demo itself exits (a second Ctrl-C, a crash), its children must not outlive it.
    process.once('exit', t.#killOnExit);
    try {
      await t.#start();
      return t;
    } catch (e) {
      await t.stop();
      throw e;
    }
  }

  get children(): readonly DemoChild[] {
    return this.#children;
  }

  #spawn(name: string, script: string, args: string[]): DemoChild {
    const meshlet = script === this.#o.meshletBin;
    const flags = meshlet ? MESHLET_NODE_FLAGS : [];
    const c = new DemoChild(name, process.execPath, [...flags, script, ...args], meshlet ? { ...this.#env, ...MESHLET_NODE_ENV } : this.#env);
    this.#children.push(c);
    return c;
  }

  #sidecar(service: string, app: string, labels: Record<string, string>): DemoChild {
    const id = labels.instance ?? service;
    return this.#spawn(`${id}'s sidecar`, this.#o.meshletBin, [
      'sidecar',
      '--service', service,
      '--app', app,
      '--inbound', '127.0.0.1:0',
      '--outbound', '127.0.0.1:0',
      '--admin', '127.0.0.1:0',
      '--data-dir', path.join(this.#o.dataDir, `sidecar-${id}`),
      '--control-plane', this.controlPlaneUrl,
      '--id', id,
      '--labels', Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','),
      '--drain-timeout', '2s',
    ]);
  }

  async #start(): Promise<void> {
    const { progress, startTimeoutMs: timeout } = this.#o;
    const cp = this.#spawn('control plane', this.#o.meshletBin, [
      'control-plane',
      '--config', this.#o.meshConfigFile,
      '--data-dir', path.join(this.#o.dataDir, 'control-plane'),
      '--listen', '127.0.0.1:0',
      '--instance-ttl', '5s',
    ]);
    this.controlPlaneUrl = `http://${(await cp.listening(['api'], timeout)).api}`;
    progress(`control plane    ${this.controlPlaneUrl}  (file store in ${path.join(this.#o.dataDir, 'control-plane')})`);

    // Apps first (in parallel), then their sidecars, which need the apps' addresses.
    const users = this.#o.usersVersions.map((version, i) => {
      const instance = `users-${i + 1}`;
      return { instance, version, child: this.#spawn(instance, path.join(this.#o.servicesDir, 'users.js'), ['--listen', '127.0.0.1:0', '--instance', instance, '--version', version]) };
    });
    const apps = await Promise.all(users.map(async (u) => ({ ...u, app: (await u.child.listening(['http'], timeout)).http })));
    const sidecars = apps.map((u) => ({ ...u, sidecar: this.#sidecar('users', u.app, { version: u.version, instance: u.instance }) }));

    // orders and its sidecar point at each other: reserve orders' port, start the sidecar, then orders.
    const ordersApp = formatHostPort({ host: '127.0.0.1', port: await freePort() });
    const ordersSidecar = this.#sidecar('orders', ordersApp, { version: 'v1', instance: 'orders-1' });

    for (const u of sidecars) {
      const a = await u.sidecar.listening(['inbound', 'outbound', 'admin'], timeout);
      this.users.push({ instance: u.instance, version: u.version, app: u.app, inbound: a.inbound, admin: a.admin });
      progress(`${u.instance} (${u.version})    app ${u.app}  sidecar inbound ${a.inbound}  admin ${a.admin}`);
    }
    const o = await ordersSidecar.listening(['inbound', 'outbound', 'admin'], timeout);
    const orders = this.#spawn('orders', path.join(this.#o.servicesDir, 'orders.js'), ['--listen', ordersApp, '--instance', 'orders-1', '--outbound', o.outbound]);
    await orders.listening(['http'], timeout);
    this.orders = { app: ordersApp, inbound: o.inbound, outbound: o.outbound, admin: o.admin };
    progress(`orders           app ${ordersApp}  sidecar inbound ${o.inbound}  outbound ${o.outbound}  admin ${o.admin}`);

    // Ready = every sidecar applied a snapshot, and orders' sidecar sees all users instances.
    for (const u of sidecars) await until(async () => ((await getJson(`http://${this.users.find((x) => x.instance === u.instance)!.admin}/ready`)).status === 200 ? true : undefined), timeout, `${u.instance}'s sidecar to be ready`, u.sidecar);
    await until(async () => ((await getJson(`http://${o.admin}/ready`)).status === 200 ? true : undefined), timeout, "orders' sidecar to be ready", ordersSidecar);
    const want = new Set(this.users.map((u) => u.inbound));
    await until(
      async () => {
        const seen = await this.usersEndpoints();
        return [...want].every((a) => seen.some((e) => e.address === a)) ? true : undefined;
      },
      timeout,
      "orders' sidecar to see every users instance (registration through the control plane)",
      ordersSidecar,
    );
  }

  /** The users endpoints as orders' sidecar sees them (address, breaker state, ejections). */
  async usersEndpoints(): Promise<Array<{ address: string; breaker: string; ejections: number; healthy: boolean }>> {
    const r = await getJson(`http://${this.orders.admin}/endpoints`);
    const svc = (r.body as { services?: Record<string, { endpoints?: Array<{ address: string; breaker: string; ejections: number; healthy: boolean }> }> }).services?.users;
    return svc?.endpoints ?? [];
  }

  /** The config version orders' sidecar runs. */
  async ordersConfigVersion(): Promise<string | undefined> {
    const r = await getJson(`http://${this.orders.admin}/config`);
    return r.status === 200 ? String((r.body as { version?: unknown }).version) : undefined;
  }

  /** Retries orders' sidecar made, from its Prometheus metrics (undefined when it exposes none). */
  async ordersRetries(): Promise<number | undefined> {
    const res = await fetch(`http://${this.orders.admin}/metrics`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return undefined;
    const text = await res.text();
    let sum: number | undefined;
    for (const line of text.split('\n')) {
      const m = /^meshlet_retries_total(?:\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
      if (m) sum = (sum ?? 0) + Number(m[1]);
    }
    // A counter with labels shows no sample before its first increment; its TYPE line means 0.
    return sum ?? (text.includes('# TYPE meshlet_retries_total') ? 0 : undefined);
  }

  /** Requests each app received (from their /stats): the users instances and orders. */
  async appStats(): Promise<{ users: Record<string, number>; orders: number }> {
    const users: Record<string, number> = {};
    for (const u of this.users) users[u.instance] = ((await getJson(`http://${u.app}/stats`)).body as { requests: number }).requests;
    const orders = ((await getJson(`http://${this.orders.app}/stats`)).body as { requests: number }).requests;
    return { users, orders };
  }

  async setFault(instance: string, settings: { errorRate?: number; latencyMs?: number; hang?: boolean }): Promise<void> {
    const u = this.users.find((x) => x.instance === instance);
    if (!u) throw new Error(`no users instance ${instance}`);
    const res = await fetch(`http://${u.app}/fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(settings), signal: AbortSignal.timeout(2000) });
    if (!res.ok) throw new Error(`POST ${u.app}/fault answered ${res.status}: ${await res.text()}`);
  }

  /** Pushes a new mesh config through the control plane's API; returns the version it became. */
  async pushConfig(text: string, note: string): Promise<string> {
    const res = await fetch(`${this.controlPlaneUrl}/v1/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/yaml', 'x-meshlet-author': 'meshlet demo', 'x-meshlet-note': note },
      body: text,
      signal: AbortSignal.timeout(5000),
    });
    const body = (await res.json()) as { version?: unknown; error?: { message?: string } };
    if (!res.ok) throw new Error(`PUT ${this.controlPlaneUrl}/v1/config answered ${res.status}: ${body.error?.message ?? JSON.stringify(body)}`);
    return String(body.version);
  }

  readonly #killOnExit = (): void => this.killAll();

  /** Stops everything: orders' side first, the control plane last, so sidecars deregister cleanly. */
  async stop(graceMs = 5000): Promise<void> {
    const byName = (pred: (c: DemoChild) => boolean) => this.#children.filter(pred);
    const isCp = (c: DemoChild) => c.name === 'control plane';
    const isSidecar = (c: DemoChild) => c.name.endsWith('sidecar');
    await Promise.all(byName((c) => !isCp(c) && !isSidecar(c)).map((c) => c.stop(graceMs)));
    await Promise.all(byName(isSidecar).map((c) => c.stop(graceMs)));
    await Promise.all(byName(isCp).map((c) => c.stop(graceMs)));
    process.off('exit', this.#killOnExit);
  }

  /** Last resort on process exit: kill whatever still runs, synchronously. */
  killAll(): void {
    for (const c of this.#children) if (c.running && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

export function hostPortOf(address: string): HostPort {
  const hp = parseHostPort(address);
  if (!hp) throw new Error(`not host:port: ${address}`);
  return hp;
}

// `meshlet control-plane`: the store (file by default), snapshot push and admin API.
// --config seeds an EMPTY store only; once the store holds a version it wins (Kuma-style), and a
// differing file is reported and ignored, so a restart never silently undoes a `ctl apply`.
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { parseHostPort } from '../core/address.js';
import { parseMeshConfig } from '../core/config/parse.js';
import { formatViolation } from '../core/config/violation.js';
import { parseDuration } from '../core/duration.js';
import { createLogger } from '../core/log.js';
import { ControlPlane } from '../control-plane/control-plane.js';
import { DiscoveryHub } from '../control-plane/discovery/discovery-hub.js';
import { EtcdStore } from '../control-plane/store/etcd-store.js';
import { FileStore } from '../control-plane/store/file-store.js';
import type { Store } from '../control-plane/store/store.js';

interface ControlPlaneArgs {
  config?: string;
  'data-dir': string;
  listen: string;
  'token-file'?: string;
  store: 'file' | 'etcd';
  'etcd-endpoints'?: string;
  'history-limit': number;
  'instance-ttl': string;
}

class UsageError extends Error {}

export const controlPlaneCommand: CommandModule<object, ControlPlaneArgs> = {
  command: 'control-plane',
  describe: 'Run the control plane: config store with history, sidecar registry, snapshot push, admin API',
  builder: (y: Argv) =>
    y
      .option('config', { type: 'string', describe: 'Mesh config (YAML/JSON) to seed an empty store with; ignored once the store has a version' })
      .option('data-dir', { type: 'string', default: '.meshlet/control-plane', describe: 'Where the file store keeps config versions' })
      .option('listen', { type: 'string', default: '127.0.0.1:15010', describe: 'API address host:port (port 0 = any free port)' })
      .option('token-file', { type: 'string', describe: 'File holding the bearer token required on mutating API calls' })
      .option('store', { choices: ['file', 'etcd'] as const, default: 'file' as const, describe: 'Config and registry store' })
      .option('etcd-endpoints', { type: 'string', describe: 'etcd client URLs, comma-separated: the store with --store etcd, and the default for etcd discovery' })
      .option('history-limit', { type: 'number', default: 50, describe: 'Config versions kept' })
      .option('instance-ttl', { type: 'string', default: '10s', describe: 'A registered sidecar instance disappears after this long without a heartbeat' }) as unknown as Argv<ControlPlaneArgs>,
  handler: async (args) => {
    const log = createLogger('control-plane');
    try {
      await run(args, log);
    } catch (e) {
      if (e instanceof UsageError) {
        console.error(`meshlet control-plane: ${e.message}`);
        process.exitCode = 2;
        return;
      }
      log.fatal({ err: e }, 'control plane failed to start');
      console.error(`meshlet control-plane: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  },
};

async function run(args: ControlPlaneArgs, log: ReturnType<typeof createLogger>): Promise<void> {
  const listen = parseHostPort(args.listen);
  if (!listen) throw new UsageError(`--listen: expected host:port, got "${args.listen}"`);
  const ttlMs = parseDuration(args['instance-ttl']);
  if (ttlMs === undefined || ttlMs < 300) throw new UsageError(`--instance-ttl: expected a duration of at least 300ms such as "10s", got "${args['instance-ttl']}"`);
  if (!Number.isInteger(args['history-limit']) || args['history-limit'] < 1) throw new UsageError(`--history-limit: expected a whole number ≥ 1, got "${args['history-limit']}"`);

  let token: string | undefined;
  if (args['token-file'] !== undefined) {
    token = (await readFile(args['token-file'], 'utf8').catch((e: Error) => {
      throw new UsageError(`--token-file: cannot read ${args['token-file']}: ${e.message}`);
    })).trim();
    if (token === '' || /\s/.test(token)) throw new UsageError(`--token-file: ${args['token-file']} must hold one non-empty token without spaces`);
  }

  // Read and validate the seed before touching the store: a bad file changes nothing.
  let seed: { text: string; config: ReturnType<typeof parseMeshConfig> } | undefined;
  if (args.config !== undefined) {
    const text = await readFile(args.config, 'utf8').catch((e: Error) => {
      throw new UsageError(`--config: cannot read ${args.config}: ${e.message}`);
    });
    const parsed = parseMeshConfig(text);
    if (!parsed.ok) throw new UsageError(`--config ${args.config} is invalid:\n${parsed.violations.map((v) => `  ${formatViolation(v, args.config)}`).join('\n')}`);
    seed = { text, config: parsed };
  }

  let store: Store;
  const etcdEndpoints = (args['etcd-endpoints'] ?? '').split(',').map((u) => u.trim()).filter((u) => u !== '');
  const badEndpoint = etcdEndpoints.find((u) => !/^https?:\/\/[^/\s]+:\d{1,5}\/?$/.test(u));
  if (badEndpoint !== undefined) throw new UsageError(`--etcd-endpoints: expected URLs such as http://127.0.0.1:2379, got "${badEndpoint}"`);
  if (args.store === 'etcd') {
    if (etcdEndpoints.length === 0) throw new UsageError('--store etcd needs --etcd-endpoints URL[,URL…]');
    store = await EtcdStore.open({ endpoints: etcdEndpoints, historyLimit: args['history-limit'], log });
  } else {
    store = await FileStore.open({ dir: args['data-dir'], historyLimit: args['history-limit'], log });
  }

  if (seed?.config.ok) {
    const cur = await store.current();
    if (!cur) {
      const v = await store.put({ config: seed.config.input, text: seed.text, author: 'control-plane --config', note: `seeded from ${args.config}` }, 0);
      log.info({ version: v.version, file: args.config }, 'store was empty: seeded from --config');
    } else if (cur.text !== seed.text) {
      log.warn({ version: cur.version, file: args.config }, 'the store already holds a config, which wins; --config is ignored (use `meshlet ctl apply -f` to change it)');
    }
  }

  const cp = new ControlPlane({ store, log, token, instanceTtlMs: ttlMs });
  // Discovery providers follow the config's discovery blocks and feed the snapshots.
  const discovery = new DiscoveryHub({ log: log.child({ component: 'discovery' }), etcdEndpoints });
  discovery.onChange((services) => {
    const cur = discovery.current();
    for (const s of services) cp.setDiscovered(s, cur.get(s) ?? []);
  });
  const followConfig = (): Promise<void> =>
    store
      .current()
      .then((c) => discovery.update(c?.config))
      .catch((e: Error) => log.warn({ err: e.message }, 'discovery could not follow the config'));
  store.subscribe((e) => {
    if (e.kind === 'config') void followConfig();
  });
  await followConfig();
  await cp.listen(listen.host, listen.port);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    Promise.all([discovery.stop(), cp.close()]).then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

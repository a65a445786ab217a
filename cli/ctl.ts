// `meshlet ctl`: the operator's view of the control plane. Tables for people, -o json|yaml for
// scripts, and exit codes scripts can rely on: 0 ok, 1 refused/invalid, 2 usage, 3 unreachable,
// 4 unauthorized.
import { readFile } from 'node:fs/promises';
import { stringify as toYaml } from 'yaml';
import type { Argv, CommandModule } from 'yargs';
import { formatViolation, type Violation } from '../core/config/violation.js';
import { CtlApi, CtlError, EXIT } from './ctl-api.js';
import { ctlStatCommand } from './ctl-stat.js';
import { formatTable } from './ctl-table.js';

export interface CtlArgs {
  'control-plane': string;
  token?: string;
  output: 'table' | 'json' | 'yaml';
  timeout: number;
}

type Handler<A> = (api: CtlApi, args: CtlArgs & A) => Promise<void>;

/** Runs a verb: CtlError → message on stderr and its exit code. */
function verb<A>(fn: Handler<A>): (args: CtlArgs & A) => Promise<void> {
  return async (args) => {
    try {
      const api = new CtlApi({ baseUrl: args['control-plane'], token: args.token, timeoutMs: args.timeout });
      await fn(api, args);
    } catch (e) {
      if (e instanceof CtlError) {
        console.error(`meshlet ctl: ${e.message}`);
        process.exitCode = e.exitCode;
        return;
      }
      console.error(`meshlet ctl: ${(e as Error).message}`);
      process.exitCode = EXIT.refused;
    }
  };
}

function print(args: CtlArgs, data: unknown, table: () => string): void {
  if (args.output === 'json') console.log(JSON.stringify(data, null, 2));
  else if (args.output === 'yaml') process.stdout.write(toYaml(data));
  else console.log(table());
}

async function readInput(file: string): Promise<string> {
  try {
    return file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (e) {
    throw new CtlError(`cannot read ${file}: ${(e as Error).message}`, EXIT.usage);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/** Prints a 422's violations as file:line:column and rethrows with exit code 1. */
function reportInvalid(e: unknown, file: string, args: CtlArgs): never {
  if (e instanceof CtlError && e.body?.error?.code === 'CONFIG_INVALID') {
    const violations = (e.body.error.details?.violations ?? []) as Violation[];
    if (args.output === 'table') for (const v of violations) console.error(formatViolation(v, file === '-' ? '<stdin>' : file));
    else print(args, e.body, () => '');
    throw new CtlError(`${file === '-' ? 'the config' : file} is invalid (${violations.length} violation${violations.length === 1 ? '' : 's'}); nothing was changed`, EXIT.refused, e.body);
  }
  throw e;
}

const contentType = (file: string): string => (file.endsWith('.json') ? 'application/json' : 'application/yaml');
const short = (hash: unknown): string => (typeof hash === 'string' ? hash.slice(0, 12) : '-');
const labelText = (l: Record<string, string> | undefined): string =>
  Object.entries(l ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

interface VersionMeta {
  version: number;
  author: string;
  note: string;
  createdAt: string;
  rollbackOf?: number;
  unchanged?: boolean;
}

const applyCommand: CommandModule<CtlArgs, CtlArgs & { file: string; 'expected-version'?: number; author?: string; note?: string }> = {
  command: 'apply',
  describe: 'Validate a mesh config and make it the current version',
  builder: (y) =>
    y
      .option('file', { alias: 'f', type: 'string', demandOption: true, describe: 'YAML or JSON file ("-" for stdin)' })
      .option('expected-version', { type: 'number', describe: 'Refuse (exit 1) unless this is still the current version' })
      .option('author', { type: 'string', describe: 'Recorded with the version (default: $USER)' })
      .option('note', { type: 'string', describe: 'Why this change (recorded in history)' }) as never,
  handler: verb(async (api, args) => {
    const text = await readInput(args.file);
    const q = args['expected-version'] !== undefined ? `?expectedVersion=${args['expected-version']}` : '';
    const headers: Record<string, string> = { 'x-meshlet-author': encodeURIComponent(args.author ?? process.env.USER ?? 'ctl') };
    if (args.note) headers['x-meshlet-note'] = encodeURIComponent(args.note);
    const v = await api.call<VersionMeta>('PUT', `/v1/config${q}`, { body: text, contentType: contentType(args.file), headers }).catch((e: unknown) => reportInvalid(e, args.file, args));
    print(args, v, () => (v.unchanged ? `unchanged: version ${v.version} already holds this config` : `applied: version ${v.version}`));
  }),
};

const validateCommand: CommandModule<CtlArgs, CtlArgs & { file: string }> = {
  command: 'validate',
  describe: 'Check a mesh config without applying it',
  builder: (y) => y.option('file', { alias: 'f', type: 'string', demandOption: true, describe: 'YAML or JSON file ("-" for stdin)' }) as never,
  handler: verb(async (api, args) => {
    const text = await readInput(args.file);
    const r = await api.call<{ services: number; routes: number }>('POST', '/v1/config/validate', { body: text, contentType: contentType(args.file) }).catch((e: unknown) => reportInvalid(e, args.file, args));
    print(args, r, () => `${args.file}: valid (${r.services} services, ${r.routes} routes)`);
  }),
};

interface ServiceView {
  name: string;
  configured: boolean;
  endpoints: Array<{ address: string; weight: number; labels: Record<string, string>; source: string; health: string; sidecar?: string }>;
}

const getCommand: CommandModule<CtlArgs, CtlArgs & { what: string; at?: number }> = {
  command: 'get <what>',
  describe: 'Show config, services, endpoints or sidecars',
  builder: (y) =>
    y
      .positional('what', { choices: ['config', 'services', 'endpoints', 'sidecars'] as const, describe: 'What to show' })
      .option('at', { type: 'number', describe: 'With "config": that version from history instead of the current one' }) as never,
  handler: verb(async (api, args) => {
    if (args.what === 'config') {
      const path = args.at !== undefined ? `/v1/config/versions/${args.at}` : '/v1/config';
      const v = await api.call<VersionMeta & { config: unknown; text: string }>('GET', path);
      // The table view is the text as written (comments kept), so `get config > f && apply -f f` round-trips.
      print(args, v, () => `# meshlet config version ${v.version} by ${v.author} at ${v.createdAt}\n${v.text.replace(/\n$/, '')}`);
      return;
    }
    if (args.what === 'sidecars') {
      const r = await api.call<{ sidecars: Array<Record<string, any>> }>('GET', '/v1/sidecars');
      print(args, r, () =>
        formatTable(
          ['ID', 'SERVICE', 'ADDRESS', 'LABELS', 'ADMIN', 'REGISTERED', 'CONNECTED', 'APPLIED', 'LAST SEEN'],
          r.sidecars.map((s) => [s.id, s.service, s.address, labelText(s.labels), s.adminAddress, s.registered, s.connected, s.applied?.version, s.lastSeen]),
        ),
      );
      return;
    }
    const r = await api.call<{ configVersion: number | null; services: ServiceView[] }>('GET', '/v1/services');
    if (args.what === 'services') {
      const count = (s: ServiceView, pred: (e: ServiceView['endpoints'][number]) => boolean): number => s.endpoints.filter(pred).length;
      print(args, r, () =>
        formatTable(
          ['SERVICE', 'CONFIGURED', 'STATIC', 'REGISTERED', 'DISCOVERED', 'STALE'],
          r.services.map((s) => [s.name, s.configured, count(s, (e) => e.source === 'static'), count(s, (e) => e.source === 'registered'), count(s, (e) => e.source !== 'static' && e.source !== 'registered'), count(s, (e) => e.health === 'stale')]),
        ),
      );
      return;
    }
    print(args, r, () =>
      formatTable(
        ['SERVICE', 'ADDRESS', 'SOURCE', 'HEALTH', 'WEIGHT', 'LABELS', 'SIDECAR'],
        r.services.flatMap((s) => s.endpoints.map((e) => [s.name, e.address, e.source, e.health, e.weight, labelText(e.labels), e.sidecar])),
      ),
    );
  }),
};

const historyCommand: CommandModule<CtlArgs, CtlArgs & { limit?: number }> = {
  command: 'history',
  describe: 'List config versions, newest first',
  builder: (y) => y.option('limit', { type: 'number', describe: 'Show at most this many' }) as never,
  handler: verb(async (api, args) => {
    const r = await api.call<{ current: number | null; versions: VersionMeta[] }>('GET', `/v1/config/history${args.limit !== undefined ? `?limit=${args.limit}` : ''}`);
    print(args, r, () =>
      formatTable(
        ['VERSION', 'CREATED', 'AUTHOR', 'NOTE'],
        r.versions.map((v) => [`${v.version === r.current ? '*' : ' '}${v.version}`, v.createdAt, v.author, v.rollbackOf !== undefined && !v.note ? `rollback to ${v.rollbackOf}` : v.note]),
      ),
    );
  }),
};

const rollbackCommand: CommandModule<CtlArgs, CtlArgs & { target: number; 'expected-version'?: number; author?: string; note?: string }> = {
  // "version" is reserved by yargs, hence "target".
  command: 'rollback <target>',
  describe: 'Make an older version current again (as a new version)',
  builder: (y) =>
    y
      .positional('target', { type: 'number', describe: 'The version to return to' })
      .option('expected-version', { type: 'number', describe: 'Refuse (exit 1) unless this is still the current version' })
      .option('author', { type: 'string', describe: 'Recorded with the version (default: $USER)' })
      .option('note', { type: 'string', describe: 'Why (recorded in history)' }) as never,
  handler: verb(async (api, args) => {
    if (!Number.isInteger(args.target) || args.target < 1) throw new CtlError(`the version to roll back to must be a whole number ≥ 1, got "${args.target}"`, EXIT.usage);
    const body = JSON.stringify({ version: args.target, ...(args['expected-version'] !== undefined ? { expectedVersion: args['expected-version'] } : {}), ...(args.note ? { note: args.note } : {}) });
    const v = await api.call<VersionMeta>('POST', '/v1/config/rollback', { body, headers: { 'x-meshlet-author': encodeURIComponent(args.author ?? process.env.USER ?? 'ctl') } });
    print(args, v, () => `rolled back: version ${v.version} now holds the config of version ${v.rollbackOf}`);
  }),
};

const statusCommand: CommandModule<CtlArgs, CtlArgs> = {
  command: 'status',
  describe: 'Per sidecar: synced, stale or refused (with the reason), like istioctl proxy-status',
  handler: verb(async (api, args) => {
    const r = await api.call<{ snapshot: { version: string; hash: string } | null; sidecars: Array<Record<string, any>> }>('GET', '/v1/sidecars');
    print(args, r, () => {
      const head = r.snapshot ? `current snapshot: version ${r.snapshot.version} (${short(r.snapshot.hash)})` : 'no config yet';
      const table = formatTable(
        ['ID', 'SERVICE', 'STATUS', 'APPLIED', 'SENT', 'CONNECTED', 'LAST SEEN', 'REASON'],
        r.sidecars.map((s) => [
          s.id,
          s.service,
          s.status,
          s.applied ? `${s.applied.version} (${short(s.applied.hash)})` : null,
          s.sent ? `${s.sent.version} (${short(s.sent.hash)})` : null,
          s.connected,
          s.lastSeen,
          s.status === 'refused' ? s.lastRefusal?.reason : null,
        ]),
      );
      return `${head}\n${table}`;
    });
  }),
};

export const ctlCommand: CommandModule<object, CtlArgs> = {
  command: 'ctl',
  describe: 'Operate the control plane: apply, get, validate, history, rollback, status, stat',
  builder: (y: Argv) =>
    y
      .option('control-plane', { type: 'string', default: 'http://127.0.0.1:15010', describe: 'Control plane base URL', global: true })
      .option('token', { type: 'string', describe: 'Bearer token for mutating calls', global: true })
      .option('output', { alias: 'o', choices: ['table', 'json', 'yaml'] as const, default: 'table' as const, describe: 'Output format', global: true })
      .option('timeout', { type: 'number', default: 10_000, describe: 'Milliseconds to wait for the control plane', global: true })
      .command(applyCommand as CommandModule)
      .command(getCommand as CommandModule)
      .command(validateCommand as CommandModule)
      .command(historyCommand as CommandModule)
      .command(rollbackCommand as CommandModule)
      .command(statusCommand as CommandModule)
      .command(ctlStatCommand)
      .demandCommand(1, 'name a verb: apply, get, validate, history, rollback, status or stat')
      // Usage mistakes exit 2 (yargs would exit 1, which scripts read as "refused").
      .fail((msg, err, yy) => {
        if (err) throw err;
        void yy;
        console.error(`${msg}\nRun "meshlet ctl --help" for usage.`);
        process.exit(EXIT.usage);
      }) as unknown as Argv<CtlArgs>,
  handler: () => {},
};

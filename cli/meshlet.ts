#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --single-threaded-gc --v8-pool-size=1 --max-semi-space-size=8
// The one executable. Each subcommand lives in its own file; every flag has a MESHLET_* twin
// (--control-plane ⇔ MESHLET_CONTROL_PLANE). Flags given on the command line win over the variables.
// The shebang's node flags are core/node-flags.ts's (why is there).
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';

// Only the subcommand being run is loaded: a sidecar does not pay (in start-up time and memory)
// for the control plane's etcd/gRPC client or the demo. `meshlet --help` loads them all.
const COMMANDS: Record<string, () => Promise<CommandModule<any, any>>> = {
  sidecar: async () => (await import('./sidecar.js')).sidecarCommand,
  'control-plane': async () => (await import('./control-plane.js')).controlPlaneCommand,
  ctl: async () => (await import('./ctl.js')).ctlCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
};
const args = hideBin(process.argv);
const chosen = args[0] !== undefined && Object.hasOwn(COMMANDS, args[0]) ? [args[0]] : Object.keys(COMMANDS);
const commands = await Promise.all(chosen.map((name) => COMMANDS[name]!()));

const ENV_PREFIX = 'MESHLET_';
const camel = (s: string): string => s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * yargs' .env() feeds every MESHLET_* variable to every command, so strict mode would refuse a
 * container's MESHLET_INBOUND when it runs `control-plane`. Instead, before validation, keep only
 * the variables that are options of the command being run; a misspelt flag on the command line
 * is still refused.
 */
function envTwins(argv: Record<string, unknown>, y: Argv): void {
  const known = Object.keys((y as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
  const options = new Set(known.flatMap((k) => [k, camel(k)]));
  for (const name of Object.keys(process.env)) {
    if (!name.startsWith(ENV_PREFIX)) continue;
    const flag = name.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, '-');
    if (options.has(flag)) continue;
    delete argv[flag];
    delete argv[camel(flag)];
  }
}

await yargs(args)
  .scriptName('meshlet')
  .env('MESHLET')
  .middleware(envTwins as never, true)
  .command(commands)
  .demandCommand(1, 'name a subcommand: sidecar, control-plane, ctl or demo')
  .strict()
  .help()
  .version()
  .parseAsync();

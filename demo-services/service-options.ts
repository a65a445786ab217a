// Flags of the demo services, each with a DEMO_* environment twin (--error-rate ⇔ DEMO_ERROR_RATE),
// so they run the same from a shell, from `meshlet demo` and from compose.yaml.
import yargs, { type Argv } from 'yargs';
import { parseHostPort, type HostPort } from '../core/address.js';
import { parseDuration } from '../core/duration.js';
import type { FaultSettings } from './fault-knobs.js';

export interface ServiceOptions {
  listen: HostPort;
  instance: string;
  version: string;
  faults: FaultSettings;
  crashAfter: number;
}

export function serviceArgs(argv: string[], name: string, defaultPort: number): Argv<{
  listen: string;
  instance: string;
  version: string;
  'error-rate': number;
  latency: string;
  hang: boolean;
  'crash-after': number;
}> {
  return yargs(argv)
    .scriptName(name)
    .env('DEMO')
    .version(false)
    .option('listen', { type: 'string', default: `127.0.0.1:${defaultPort}`, describe: 'host:port to serve on (port 0: any free port)' })
    .option('instance', { type: 'string', default: `${name}-1`, describe: 'instance name, echoed in every answer' })
    .option('version', { type: 'string', default: 'v1', describe: 'version label, echoed in every answer' })
    .option('error-rate', { type: 'number', default: 0, describe: 'share of requests answered 503 (0..1)' })
    .option('latency', { type: 'string', default: '0ms', describe: 'delay added to every answer ("50ms", "1s")' })
    .option('hang', { type: 'boolean', default: false, describe: 'never answer requests' })
    .option('crash-after', { type: 'number', default: 0, describe: 'exit after this many requests (0: never)' })
    .strict()
    .help();
}

/** Turns parsed flags into options; throws an Error naming the flag and its env twin when one is bad. */
export function serviceOptions(a: { listen: string; instance: string; version: string; 'error-rate': number; latency: string; hang: boolean; 'crash-after': number }): ServiceOptions {
  const listen = parseHostPort(a.listen);
  if (!listen) throw new Error(`--listen (DEMO_LISTEN) "${a.listen}": expected host:port, e.g. 127.0.0.1:9101`);
  const errorRate = a['error-rate'];
  if (!Number.isFinite(errorRate) || errorRate < 0 || errorRate > 1) throw new Error(`--error-rate (DEMO_ERROR_RATE) ${a['error-rate']}: expected a number from 0 to 1`);
  const latencyMs = parseDuration(a.latency);
  if (latencyMs === undefined) throw new Error(`--latency (DEMO_LATENCY) "${a.latency}": expected a duration such as "50ms" or "1s"`);
  const crashAfter = a['crash-after'];
  if (!Number.isInteger(crashAfter) || crashAfter < 0) throw new Error(`--crash-after (DEMO_CRASH_AFTER) ${a['crash-after']}: expected a whole number ≥ 0`);
  if (!a.instance) throw new Error('--instance (DEMO_INSTANCE) must not be empty');
  return { listen, instance: a.instance, version: a.version, faults: { errorRate, latencyMs, hang: a.hang }, crashAfter };
}

// `meshlet demo`: the whole mesh on this machine in one command — a control plane, three users
// instances (v1, v1, v2) and orders, each beside its sidecar — with traffic, a failing instance,
// the breaker at work and a config push. Everything runs as child processes on loopback ports
// chosen at run time and is stopped at the end (also on Ctrl-C).
import type { Argv, CommandModule } from 'yargs';
import { parseDuration } from '../core/duration.js';
import { DemoDisplay, renderSummary } from '../demo-services/demo/demo-display.js';
import { runDemo } from '../demo-services/demo/demo-run.js';

interface DemoArgs {
  duration: string;
  rps: number;
  concurrency: number;
  quiet: boolean;
  output: 'table' | 'json';
  'data-dir'?: string;
}

const MIN_DURATION_MS = 10_000;
const MAX_DURATION_MS = 3_600_000;

class UsageError extends Error {}

function check(args: DemoArgs): { durationMs: number } {
  const durationMs = parseDuration(/^\d+$/.test(args.duration) ? `${args.duration}s` : args.duration);
  if (durationMs === undefined || durationMs < MIN_DURATION_MS || durationMs > MAX_DURATION_MS)
    throw new UsageError(`--duration (MESHLET_DURATION): expected a duration from 10s to 1h such as "30s" or "2m", got "${args.duration}"`);
  if (!Number.isInteger(args.rps) || args.rps < 1 || args.rps > 5000) throw new UsageError(`--rps (MESHLET_RPS): expected a whole number from 1 to 5000, got "${args.rps}"`);
  if (!Number.isInteger(args.concurrency) || args.concurrency < 1 || args.concurrency > 512)
    throw new UsageError(`--concurrency (MESHLET_CONCURRENCY): expected a whole number from 1 to 512, got "${args.concurrency}"`);
  return { durationMs };
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Run the demo mesh: control plane, users ×3 (one made faulty), orders, a sidecar each, live traffic and a config push',
  builder: (y: Argv) =>
    y
      .option('duration', { type: 'string', default: '30s', describe: 'How long traffic runs (10s to 1h)' })
      .option('rps', { type: 'number', default: 200, describe: 'GetOrder requests per second the client sends' })
      .option('concurrency', { type: 'number', default: 16, describe: 'Most client requests in flight' })
      .option('quiet', { type: 'boolean', default: false, describe: 'No live view, only the summary (for CI)' })
      .option('output', { alias: 'o', choices: ['table', 'json'] as const, default: 'table' as const, describe: 'Summary format: a table for people, or JSON' })
      .option('data-dir', { type: 'string', describe: 'Keep the control plane store and sidecar snapshots here (default: a temporary directory, removed at the end)' })
      .example('$0 demo', 'the live demo, 30 s')
      .example('$0 demo --quiet -o json --duration 20s', 'for CI: the summary as JSON; exit 0 when every check held') as unknown as Argv<DemoArgs>,
  handler: async (args) => {
    let durationMs: number;
    try {
      ({ durationMs } = check(args));
    } catch (e) {
      console.error(`meshlet demo: ${(e as Error).message}`);
      process.exitCode = 2;
      return;
    }
    const interrupt = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (interrupt.signal.aborted) {
        // A second Ctrl-C: stop now; the exit hook still kills every child.
        process.stderr.write(`meshlet demo: ${signal} again: killing every process now\n`);
        process.exit(130);
      }
      process.stderr.write(`\nmeshlet demo: ${signal}: stopping traffic and every process (again to force) …\n`);
      interrupt.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const mode = args.quiet ? 'quiet' : process.stdout.isTTY ? 'table' : 'lines';
    try {
      const summary = await runDemo({
        durationMs,
        rps: args.rps,
        concurrency: args.concurrency,
        dataDir: args['data-dir'],
        display: new DemoDisplay(process.stdout, mode),
        signal: interrupt.signal,
      });
      process.stdout.write(args.output === 'json' ? `${JSON.stringify(summary, null, 2)}\n` : `\n${renderSummary(summary)}\n`);
      process.exitCode = summary.interrupted ? 130 : summary.ok ? 0 : 1;
    } catch (e) {
      console.error(`meshlet demo: ${(e as Error).message}`);
      process.exitCode = 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

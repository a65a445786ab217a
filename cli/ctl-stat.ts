import type { CommandModule } from 'yargs';

// Placeholder for `meshlet ctl stat` (live traffic figures per service); the telemetry engineer
// replaces this file. It receives the ctl options (control-plane, token, output) like the others.
export const ctlStatCommand: CommandModule = {
  command: 'stat',
  describe: 'Live request rate, success rate and latency per service (not built yet)',
  handler: () => {
    console.error('meshlet ctl stat: not built yet');
    process.exitCode = 2;
  },
};

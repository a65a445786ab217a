import type { CommandModule } from 'yargs';

// Placeholder until the ctl subcommand lands.
export const ctlCommand: CommandModule = {
  command: 'ctl',
  describe: 'ctl (not built yet)',
  handler: () => {
    console.error('meshlet ctl: not built yet');
    process.exitCode = 2;
  },
};

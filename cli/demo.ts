import type { CommandModule } from 'yargs';

// Placeholder until the demo subcommand lands.
export const demoCommand: CommandModule = {
  command: 'demo',
  describe: 'demo (not built yet)',
  handler: () => {
    console.error('meshlet demo: not built yet');
    process.exitCode = 2;
  },
};

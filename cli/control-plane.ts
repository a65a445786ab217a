import type { CommandModule } from 'yargs';

// Placeholder until the control-plane subcommand lands.
export const controlPlaneCommand: CommandModule = {
  command: 'control-plane',
  describe: 'control-plane (not built yet)',
  handler: () => {
    console.error('meshlet control-plane: not built yet');
    process.exitCode = 2;
  },
};

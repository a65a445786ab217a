import type { CommandModule } from 'yargs';

// Placeholder until the sidecar subcommand lands.
export const sidecarCommand: CommandModule = {
  command: 'sidecar',
  describe: 'sidecar (not built yet)',
  handler: () => {
    process.exitCode = 2;
  },
};

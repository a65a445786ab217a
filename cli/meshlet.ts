#!/usr/bin/env node
// The one executable. Each subcommand lives in its own file; every flag has a MESHLET_* twin
// (yargs .env('MESHLET'): --control-plane ⇔ MESHLET_CONTROL_PLANE).
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { controlPlaneCommand } from './control-plane.js';
import { ctlCommand } from './ctl.js';
import { demoCommand } from './demo.js';
import { sidecarCommand } from './sidecar.js';

await yargs(hideBin(process.argv))
  .scriptName('meshlet')
  .env('MESHLET')
  .command(sidecarCommand)
  .command(controlPlaneCommand)
  .command(ctlCommand)
  .command(demoCommand)
  .demandCommand(1, 'name a subcommand: sidecar, control-plane, ctl or demo')
  .strict()
  .help()
  .version()
  .parseAsync();

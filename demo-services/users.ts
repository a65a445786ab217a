#!/usr/bin/env node
// The `users` demo service: GetUser, `GET /users/:id` → JSON. Several instances run in the demo,
// one of them made faulty with its knobs (see demo-server.ts).
//   node dist/demo-services/users.js --listen 127.0.0.1:9101 --instance users-1 --version v1
import { hideBin } from 'yargs/helpers';
import { createLogger } from '../core/log.js';
import { exitOnSignals, startDemoServer, type DemoRoute } from './demo-server.js';
import { FaultKnobs } from './fault-knobs.js';
import { serviceArgs, serviceOptions } from './service-options.js';

const USER_ID = /^\/users\/([A-Za-z0-9_-]{1,64})$/;
const NAMES = ['Ada', 'Grace', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Leslie', 'Margaret'];

function usersRoute(instance: string, version: string): DemoRoute {
  return async (req, url) => {
    const m = USER_ID.exec(url.pathname);
    if (!m || req.method !== 'GET') return undefined;
    const id = m[1]!;
    const n = [...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
    return { status: 200, body: { id, name: NAMES[n % NAMES.length], servedBy: { instance, version } } };
  };
}

const args = await serviceArgs(hideBin(process.argv), 'users', 9101).parseAsync();
const log = createLogger('users');
let opts;
try {
  opts = serviceOptions(args);
} catch (e) {
  console.error(`users: ${(e as Error).message}`);
  process.exit(2);
}
// Signal handlers first: a SIGTERM right after 'listening' must drain, not kill.
const starting = startDemoServer({
  service: 'users',
  instance: opts.instance,
  version: opts.version,
  listen: opts.listen,
  knobs: new FaultKnobs(opts.faults),
  crashAfter: opts.crashAfter,
  log,
  route: usersRoute(opts.instance, opts.version),
}).catch((e: Error) => {
  console.error(`users: cannot listen on ${args.listen}: ${e.message}`);
  process.exit(1);
});
exitOnSignals(starting, log);
await starting;


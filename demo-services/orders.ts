#!/usr/bin/env node
// The `orders` demo service: GetOrder, `GET /orders/:id` → JSON with the order's user, fetched from
// `users` THROUGH this instance's sidecar: the request goes to the sidecar's outbound listener with
// `Host: users`, and the mesh picks the users instance, retries and breaks circuits.
//   node dist/demo-services/orders.js --listen 127.0.0.1:9201 --outbound 127.0.0.1:15001
import http from 'node:http';
import { hideBin } from 'yargs/helpers';
import { parseHostPort, type HostPort } from '../core/address.js';
import { parseDuration } from '../core/duration.js';
import { createLogger } from '../core/log.js';
import { exitOnSignals, startDemoServer, type DemoReply, type DemoRoute } from './demo-server.js';
import { FaultKnobs } from './fault-knobs.js';
import { serviceArgs, serviceOptions } from './service-options.js';

const ORDER_ID = /^\/orders\/(\d{1,12})$/;
const ITEMS = ['keyboard', 'monitor', 'mouse', 'headset', 'webcam', 'dock'];

interface UsersTarget {
  outbound: HostPort;
  host: string;
  timeoutMs: number;
}

function ordersRoute(instance: string, version: string, users: UsersTarget): DemoRoute {
  // Keep-alive to the sidecar, as a real app would hold to its HTTP proxy.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return async (req, url) => {
    const m = ORDER_ID.exec(url.pathname);
    if (!m || req.method !== 'GET') return undefined;
    const id = Number(m[1]);
    const userId = String((id % 50) + 1);
    const traceparent = req.headers.traceparent;
    const user = await getUser(agent, users, userId, typeof traceparent === 'string' ? traceparent : undefined);
    if (user.status !== 200) {
      return {
        status: 502,
        body: { error: { code: 'USERS_FAILED', message: `GetUser ${userId} failed: ${user.status}`, details: { status: user.status, meshletError: user.meshletError, body: user.body } } },
      } satisfies DemoReply;
    }
    return { status: 200, body: { id, item: ITEMS[id % ITEMS.length], total: ((id * 37) % 500) + 9.99, user: user.body, servedBy: { instance, version } } };
  };
}

interface UserAnswer {
  status: number;
  body: unknown;
  meshletError?: string;
}

function getUser(agent: http.Agent, users: UsersTarget, userId: string, traceparent: string | undefined): Promise<UserAnswer> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: users.host, accept: 'application/json' };
    if (traceparent) headers.traceparent = traceparent;
    const req = http.request({ host: users.outbound.host, port: users.outbound.port, path: `/users/${userId}`, method: 'GET', headers, agent, timeout: users.timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* keep the text */
        }
        const meshletError = res.headers['x-meshlet-error'];
        resolve({ status: res.statusCode ?? 0, body, ...(typeof meshletError === 'string' ? { meshletError } : {}) });
      });
      res.on('error', (e) => resolve({ status: 0, body: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from the sidecar within ${users.timeoutMs}ms`)));
    req.on('error', (e) => resolve({ status: 0, body: `${users.outbound.host}:${users.outbound.port}: ${e.message}` }));
    req.end();
  });
}

const args = await serviceArgs(hideBin(process.argv), 'orders', 9201)
  .option('outbound', { type: 'string', default: '127.0.0.1:15001', describe: "this instance's sidecar outbound listener (host:port)" })
  .option('users-host', { type: 'string', default: 'users', describe: 'Host header that names the users service in the mesh' })
  .option('users-timeout', { type: 'string', default: '6s', describe: 'give up on GetUser after this long' })
  .parseAsync();
const log = createLogger('orders');
let opts;
let users: UsersTarget;
try {
  opts = serviceOptions(args);
  const outbound = parseHostPort(args.outbound);
  if (!outbound) throw new Error(`--outbound (DEMO_OUTBOUND) "${args.outbound}": expected host:port, e.g. 127.0.0.1:15001`);
  const timeoutMs = parseDuration(args['users-timeout']);
  if (!timeoutMs) throw new Error(`--users-timeout (DEMO_USERS_TIMEOUT) "${args['users-timeout']}": expected a duration above zero, e.g. "5s"`);
  if (!args['users-host']) throw new Error('--users-host (DEMO_USERS_HOST) must not be empty');
  users = { outbound, host: args['users-host'], timeoutMs };
} catch (e) {
  console.error(`orders: ${(e as Error).message}`);
  process.exit(2);
}
// Signal handlers first: a SIGTERM right after 'listening' must drain, not kill.
const starting = startDemoServer({
  service: 'orders',
  instance: opts.instance,
  version: opts.version,
  listen: opts.listen,
  knobs: new FaultKnobs(opts.faults),
  crashAfter: opts.crashAfter,
  log,
  route: ordersRoute(opts.instance, opts.version, users),
}).catch((e: Error) => {
  console.error(`orders: cannot listen on ${args.listen}: ${e.message}`);
  process.exit(1);
});
exitOnSignals(starting, log);
await starting;


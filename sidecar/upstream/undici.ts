// The parts of undici the sidecar uses, loaded on their own. undici's index loads all of it (fetch,
// WebSocket, EventSource, cache, mocks): ~10 MB of RSS a sidecar never uses (measured: importing
// 'undici' 59.6 MB RSS, the pool alone 50.0 MB, from a bare node's 39.3 MB). undici has no
// "exports" map, so these paths are reachable; the lock file pins the version they were read from.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const errors = require('undici/lib/core/errors.js') as typeof Undici.errors;
// undici's index mixes request/upgrade/… into Dispatcher.prototype; loaded alone, a Pool only has
// dispatch(). The forwarding path needs nothing else; WebSocket relays call the upgrade API on it.
const apiUpgrade = require('undici/lib/api/api-upgrade.js') as Undici.Dispatcher['upgrade'];
export function upgrade(d: Undici.Dispatcher, opts: Undici.Dispatcher.UpgradeOptions): Promise<Undici.Dispatcher.UpgradeData> {
  return (apiUpgrade as (this: Undici.Dispatcher, o: Undici.Dispatcher.UpgradeOptions) => Promise<Undici.Dispatcher.UpgradeData>).call(d, opts);
}
export type { Dispatcher } from 'undici';
export type Pool = Undici.Pool;
export type Agent = Undici.Agent;

// A sidecar "of an older release", for test/control-plane-sidecar-refusal.test.ts: the real Sidecar
// data path and the real ControlPlaneClient, except that, like a release that predates
// `routes[].match.pathRegex`, it refuses snapshots using it. Version skew between control plane and
// sidecars is the realistic cause of a NACK, and a mixed-release fleet cannot run here (one build):
// this rule is the only simulated part.
//   node --import tsx test/control-plane-old-release-sidecar.ts --control-plane URL --id ID --data-dir DIR
import { parseArgs } from 'node:util';
import { createLogger } from '../core/log.js';
import type { Snapshot } from '../core/snapshot.js';
import { ControlPlaneClient } from '../sidecar/control-plane-client.js';
import { Sidecar } from '../sidecar/sidecar.js';

const { values } = parseArgs({ options: { 'control-plane': { type: 'string' }, id: { type: 'string' }, 'data-dir': { type: 'string' } } });
const log = createLogger('sidecar');
const sidecar = new Sidecar({ service: 'web', outbound: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, log });

function olderReleaseRefuses(s: Snapshot): string | undefined {
  const i = (s.config.routes ?? []).findIndex((r) => r.match.pathRegex !== undefined);
  return i < 0 ? undefined : `snapshot ${s.version} is invalid: routes[${i}].match.pathRegex: unknown field (this sidecar release predates it)`;
}

await sidecar.start();
const client = new ControlPlaneClient({
  urls: [values['control-plane']!],
  sidecarId: values.id!,
  service: 'web',
  instance: { address: '127.0.0.1:9', labels: {} },
  adminAddress: sidecar.addresses.admin ?? '',
  dataDir: values['data-dir']!,
  apply: async (s) => {
    const reason = olderReleaseRefuses(s);
    return reason === undefined ? sidecar.applySnapshot(s) : { ok: false, reason };
  },
  log,
});
client.start();
process.once('SIGTERM', () => {
  void client.deregister().then(() => client.stop()).then(() => process.exit(0));
});

// kill -9 of the control plane in the middle of a burst of config writes: after a restart every
// acknowledged version is there, intact, with its text and author, and versions stay contiguous.
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { api, startControlPlane, tempDir } from './control-plane-fixture.js';

let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await cleanup?.();
});

const WRITERS = 4;
const ACKS_BEFORE_KILL = 24;
const ROUNDS = 3;

it('keeps every acknowledged version across three kill -9 during writes', async () => {
  const t = await tempDir('crash-writes');
  cleanup = t.cleanup;
  const dataDir = path.join(t.dir, 'cp');
  const acked = new Map<number, string>(); // version → text the writer sent
  let seq = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const cp = await startControlPlane({ dataDir, extra: ['--history-limit', '1000'] });
    let stop = false;
    let killed = false;
    const roundAcks: number[] = [];
    const writer = async (w: number): Promise<void> => {
      // Bounded: a writer stops at the kill or after 200 writes.
      for (let i = 0; i < 200 && !stop; i++) {
        const text = `# writer ${w} write ${++seq}\nservices:\n  svc-${seq}: {}\n`;
        try {
          const r = await api(cp.url, '/v1/config', { method: 'PUT', body: text, headers: { 'x-meshlet-author': `writer-${w}` } });
          if (r.status === 201) {
            acked.set(r.body.version as number, text);
            roundAcks.push(r.body.version as number);
            if (roundAcks.length >= ACKS_BEFORE_KILL && !killed) {
              killed = true;
              // SIGKILL while the other writers have requests in flight.
              cp.proc.child.kill('SIGKILL');
            }
          }
        } catch {
          // The connection died with the process: this write was never acknowledged.
          stop = true;
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
    await cp.proc.exited;
    expect(roundAcks.length).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);
  }

  const cp = await startControlPlane({ dataDir, extra: ['--history-limit', '1000'] });
  const history = (await api(cp.url, '/v1/config/history')).body as { current: number; versions: Array<{ version: number; author: string }> };
  const versions = history.versions.map((v) => v.version).sort((a, b) => a - b);
  // Contiguous from 1: no hole where a crash happened, no reused number.
  expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
  expect(history.current).toBeGreaterThanOrEqual(Math.max(...acked.keys()));
  for (const [version, text] of acked) {
    const v = await api(cp.url, `/v1/config/versions/${version}`);
    expect(v.status).toBe(200);
    expect(v.body.text).toBe(text);
    expect(v.body.author).toMatch(/^writer-\d$/);
  }
  // And the store still takes writes.
  expect((await api(cp.url, '/v1/config', { method: 'PUT', body: 'services:\n  after: {}\n' })).status).toBe(201);
}, 240_000);

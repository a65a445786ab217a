// Push logic with fake time. The watch stream is a stand-in for ServerResponse that records what is
// written (the HTTP side is covered by the client tests and the end-to-end tests).
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../core/clock.js';
import { makeSnapshot, type Snapshot } from '../core/snapshot.js';
import { SnapshotPusher } from './push.js';

class RecordingStream extends EventEmitter {
  frames: string[] = [];
  ended = false;
  socket = null;
  writeHead(): this {
    return this;
  }
  write(chunk: Buffer | string): boolean {
    this.frames.push(chunk.toString());
    return true;
  }
  end(): this {
    this.ended = true;
    this.emit('close');
    return this;
  }
  get snapshots(): string[] {
    return this.frames.filter((f) => f.startsWith('id: ')).map((f) => /^id: (\w+)/.exec(f)![1]!);
  }
}
const stream = (): RecordingStream & ServerResponse => new RecordingStream() as unknown as RecordingStream & ServerResponse;

const snap = (n: number): Snapshot => makeSnapshot(String(n), { services: { [`s${n}`]: {} } }, {});

function setup(): { clock: FakeClock; pusher: SnapshotPusher; calls: () => number; set: (s: Snapshot) => void } {
  const clock = new FakeClock();
  let current = snap(1);
  let calls = 0;
  const pusher = new SnapshotPusher({
    generate: async () => {
      calls++;
      return current;
    },
    coalesceMs: 10,
    keepAliveMs: 15_000,
    clock,
  });
  return { clock, pusher, calls: () => calls, set: (s) => (current = s) };
}

const flush = async (clock: FakeClock, pusher: SnapshotPusher, ms = 10): Promise<void> => {
  clock.advance(ms);
  await pusher.settled();
};

describe('SnapshotPusher', () => {
  it('coalesces a burst of changes into one generation and one send', async () => {
    const { clock, pusher, calls, set } = setup();
    await pusher.refresh();
    const s = stream();
    pusher.attach('a', s);
    expect(s.snapshots).toEqual([snap(1).hash]);
    set(snap(2));
    for (let i = 0; i < 5; i++) pusher.invalidate();
    expect(calls()).toBe(1);
    await flush(clock, pusher);
    expect(calls()).toBe(2);
    expect(s.snapshots).toEqual([snap(1).hash, snap(2).hash]);
  });

  it('names the snapshot in force by a newer version of the same content, without sending it again', async () => {
    const { clock, pusher, set } = setup();
    await pusher.refresh();
    const s = stream();
    pusher.attach('a', s);
    const same = makeSnapshot('3', { services: { s1: {} } }, {}); // version 3, the content of version 1
    expect(same.hash).toBe(snap(1).hash);
    set(same);
    pusher.invalidate();
    await flush(clock, pusher);
    expect(s.snapshots).toEqual([snap(1).hash]);
    expect(pusher.current?.version).toBe('3');
  });

  it('gives up a generation that never finishes and generates again', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const pusher = new SnapshotPusher({
      generate: () => (++calls === 2 ? new Promise<Snapshot>(() => {}) : Promise.resolve(snap(calls))),
      coalesceMs: 10,
      generateTimeoutMs: 1_000,
      clock,
    });
    await pusher.refresh();
    pusher.invalidate();
    clock.advance(10); // the second generation starts and hangs
    for (let i = 0; i < 10; i++) await Promise.resolve();
    clock.advance(1_000); // ...and is given up
    await pusher.settled();
    expect(calls).toBe(3);
    expect(pusher.current?.version).toBe('3');
  });

  it('sends nothing when the hash did not change or the client already has it', async () => {
    const { clock, pusher } = setup();
    await pusher.refresh();
    const resumed = stream();
    pusher.attach('a', resumed, { received: snap(1).hash });
    pusher.invalidate();
    await flush(clock, pusher);
    expect(resumed.snapshots).toEqual([]);
    expect(resumed.frames[0]).toBe(': connected\n\n');
  });

  it('reports stale, synced, refused per sidecar from ACKs and NACKs', async () => {
    const { clock, pusher, set } = setup();
    await pusher.refresh();
    pusher.attach('a', stream());
    expect(pusher.state('a')?.status).toBe('stale');
    pusher.ack('a', { hash: snap(1).hash, version: '1', ok: true });
    expect(pusher.state('a')?.status).toBe('synced');
    set(snap(2));
    pusher.invalidate();
    await flush(clock, pusher);
    expect(pusher.state('a')?.status).toBe('stale');
    pusher.ack('a', { hash: snap(2).hash, version: '2', ok: false, reason: 'cannot build' });
    expect(pusher.state('a')).toMatchObject({ status: 'refused', applied: { version: '1' }, lastRefusal: { version: '2', reason: 'cannot build' } });
    set(snap(3));
    pusher.invalidate();
    await flush(clock, pusher);
    // A newer snapshot replaces the refused one as the goal: stale until answered.
    expect(pusher.state('a')?.status).toBe('stale');
  });

  it('forgets a watcher that never registered when its stream closes, keeps a registered one', async () => {
    const { pusher } = setup();
    await pusher.refresh();
    pusher.setRegistered(['reg']);
    const a = stream();
    const b = stream();
    pusher.attach('anon', a);
    pusher.attach('reg', b);
    a.end();
    b.end();
    expect(pusher.states().map((s) => [s.id, s.connected])).toEqual([['reg', false]]);
  });

  it('sends keep-alive comments on every open stream', async () => {
    const { clock, pusher } = setup();
    await pusher.refresh();
    const s = stream();
    pusher.attach('a', s);
    clock.advance(15_000);
    expect(s.frames.at(-1)).toBe(': keep-alive\n\n');
    pusher.close();
    expect(s.ended).toBe(true);
  });
});

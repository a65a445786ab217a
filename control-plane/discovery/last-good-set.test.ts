import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { silentLogger } from '../../core/log.js';
import type { EndpointRecord } from '../../core/snapshot.js';
import { LastGoodSet } from './last-good-set.js';
import type { DiscoveryUpdate } from './provider.js';

const ep = (address: string): EndpointRecord => ({ address, weight: 1, labels: {}, source: 'dns' });

function setup(emptyGraceMs = 1000) {
  const clock = new FakeClock();
  const updates: DiscoveryUpdate[] = [];
  let wall = 5_000;
  const set = new LastGoodSet({ service: 'users', source: 'dns', clock, emptyGraceMs, log: silentLogger, onUpdate: (u) => updates.push(u), wallNow: () => wall });
  return { clock, updates, set, tick: (ms: number) => { wall += ms; clock.advance(ms); }, last: () => updates.at(-1)! };
}

describe('LastGoodSet', () => {
  it('publishes each complete answer sorted by address, fresh', () => {
    const { set, last } = setup();
    set.answer([ep('127.0.0.2:80'), ep('127.0.0.1:80')]);
    expect(last()).toEqual({ service: 'users', endpoints: [ep('127.0.0.1:80'), ep('127.0.0.2:80')], stale: false, updatedAt: 5_000 });
  });

  it('keeps the last good set marked stale on an error, and recovers on the next answer', () => {
    const { set, last, tick } = setup();
    set.answer([ep('127.0.0.1:80')]);
    tick(300);
    set.error(new Error('ECONNREFUSED'));
    expect(last()).toMatchObject({ stale: true, error: 'ECONNREFUSED', updatedAt: 5_000, endpoints: [{ ...ep('127.0.0.1:80'), stale: true }] });
    set.answer([ep('127.0.0.3:80')]);
    expect(last()).toEqual({ service: 'users', endpoints: [ep('127.0.0.3:80')], stale: false, updatedAt: 5_300 });
  });

  it('an error before any answer publishes an empty stale set', () => {
    const { set, last } = setup();
    set.error('no server');
    expect(last()).toMatchObject({ endpoints: [], stale: true, error: 'no server', updatedAt: 0 });
  });

  it('holds an empty answer after a good one until it persisted for the grace period', () => {
    const { set, last, tick, updates } = setup(1000);
    set.answer([ep('127.0.0.1:80')]);
    set.answer([]);
    expect(last()).toMatchObject({ stale: true, endpoints: [{ address: '127.0.0.1:80', stale: true }] });
    expect(last().error).toMatch(/empty answer/);
    tick(999);
    set.answer([]); // still empty: the grace keeps counting from the first empty answer
    expect(last().endpoints).toHaveLength(1);
    tick(1);
    expect(last()).toMatchObject({ endpoints: [], stale: false });
    expect(updates.filter((u) => u.endpoints.length === 0)).toHaveLength(1);
  });

  it('a non-empty answer during the grace cancels it', () => {
    const { set, last, tick } = setup(1000);
    set.answer([ep('127.0.0.1:80')]);
    set.answer([]);
    tick(500);
    set.answer([ep('127.0.0.2:80')]);
    tick(2000);
    expect(last()).toMatchObject({ endpoints: [ep('127.0.0.2:80')], stale: false });
  });

  it('an error during the grace cancels it (nothing is known), keeping the last good set', () => {
    const { set, last, tick } = setup(1000);
    set.answer([ep('127.0.0.1:80')]);
    set.answer([]);
    set.error('timeout');
    tick(5000);
    expect(last()).toMatchObject({ stale: true, error: 'timeout', endpoints: [{ address: '127.0.0.1:80' }] });
  });

  it('believes an empty answer at once when there was nothing to protect, or the grace is 0', () => {
    const a = setup(1000);
    a.set.answer([]);
    expect(a.last()).toMatchObject({ endpoints: [], stale: false });
    const b = setup(0);
    b.set.answer([ep('127.0.0.1:80')]);
    b.set.answer([]);
    expect(b.last()).toMatchObject({ endpoints: [], stale: false });
  });

  it('stop() cancels a pending empty confirmation and ignores later answers', () => {
    const { set, tick, updates, clock } = setup(1000);
    set.answer([ep('127.0.0.1:80')]);
    set.answer([]);
    const n = updates.length;
    set.stop();
    expect(clock.pendingTimers).toBe(0);
    tick(5000);
    set.answer([ep('127.0.0.9:80')]);
    expect(updates).toHaveLength(n);
  });
});

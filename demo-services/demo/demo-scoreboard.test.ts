import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.js';
import { DemoScoreboard, shares } from './demo-scoreboard.js';

describe('DemoScoreboard', () => {
  const instances = ['users-1', 'users-2', 'users-3'];

  it('reports the last complete second, not the one filling up', () => {
    const clock = new FakeClock();
    const b = new DemoScoreboard(clock, instances);
    b.start('warm');
    b.record(true, 'users-1');
    b.record(false, undefined);
    clock.advance(1000);
    b.record(true, 'users-2');
    expect(b.lastSecond()).toMatchObject({ requests: 2, succeeded: 1, byInstance: { 'users-1': 1, 'users-2': 0 } });
    clock.advance(1000);
    expect(b.lastSecond()).toMatchObject({ requests: 1, succeeded: 1, byInstance: { 'users-2': 1 } });
    clock.advance(5000);
    expect(b.lastSecond().requests).toBe(0);
  });

  it('keeps a tally per phase and in total, and timestamps events from the start', () => {
    const clock = new FakeClock();
    const b = new DemoScoreboard(clock, instances);
    b.start('healthy');
    b.record(true, 'users-1');
    clock.advance(2500);
    b.setPhase('failing');
    expect(b.event('users-2 made faulty').atMs).toBe(2500);
    b.record(true, 'users-3');
    b.record(false, undefined);
    const [healthy, failing] = b.phases();
    expect(healthy).toMatchObject({ name: 'healthy', startMs: 0, endMs: 2500, requests: 1, succeeded: 1 });
    expect(failing).toMatchObject({ name: 'failing', startMs: 2500, endMs: undefined, requests: 2, succeeded: 1 });
    expect(b.total()).toMatchObject({ requests: 3, succeeded: 2 });
    expect(b.phase).toBe('failing');
  });

  it('shares count successful answers only', () => {
    expect(shares({ requests: 5, succeeded: 4, byInstance: { a: 3, b: 1, c: 0 } })).toEqual({ a: 0.75, b: 0.25, c: 0 });
    expect(shares({ requests: 2, succeeded: 0, byInstance: { a: 0 } })).toEqual({ a: 0 });
  });
});

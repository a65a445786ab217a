import { describe, expect, it } from 'vitest';
import type { PhaseTally } from './demo-scoreboard.js';
import { summarize, type SummaryInput } from './demo-summary.js';

const instances = [
  { instance: 'users-1', version: 'v1' },
  { instance: 'users-2', version: 'v1' },
  { instance: 'users-3', version: 'v2' },
];
const phase = (name: string, startMs: number, requests: number, succeeded: number, byInstance: Record<string, number>): PhaseTally => ({ name, startMs, endMs: undefined, requests, succeeded, byInstance });

function input(over: Partial<SummaryInput> = {}): SummaryInput {
  const phases = [phase('healthy', 0, 300, 300, { 'users-1': 100, 'users-2': 100, 'users-3': 100 }), phase('shifted', 5000, 100, 100, { 'users-1': 5, 'users-2': 5, 'users-3': 90 })];
  return {
    interrupted: false,
    elapsedMs: 10_000,
    total: { requests: 2000, succeeded: 1999, byInstance: {} },
    phases,
    events: [{ atMs: 1234, text: 'x' }],
    instances,
    retries: 12,
    retriesSource: 'sidecar metrics',
    failures: { '502 USERS_FAILED': 1 },
    faulty: { instance: 'users-2', faultAtMs: 1000, healAtMs: 4000, ejections: 2, ejectedAtMs: 1300, backAtMs: 4500, servedAfterBack: 7 },
    shift: { configVersion: '2', pushedAtMs: 5000, appliedAtMs: 5100 },
    beforePhase: 'healthy',
    shiftedPhase: 'shifted',
    processes: { started: 9, leftRunning: 0, pids: [1] },
    ...over,
  };
}

describe('summarize', () => {
  it('passes when success held, the instance was ejected and came back, and v2 took over', () => {
    const s = summarize(input());
    expect(s.checks).toEqual({ successRate: true, faultyEjected: true, faultyBack: true, shiftedToV2: true });
    expect(s.ok).toBe(true);
    expect(s.successRate).toBeCloseTo(0.9995, 6);
    expect(s.rps).toBe(200);
    expect(s.shift.v2ShareBefore).toBeCloseTo(1 / 3, 6);
    expect(s.shift.v2ShareAfter).toBeCloseTo(0.9, 6);
    expect(s.events).toEqual([{ atS: 1.2, text: 'x' }]);
  });

  it('fails the success check below 99.9%', () => {
    const s = summarize(input({ total: { requests: 1000, succeeded: 998, byInstance: {} } }));
    expect(s.checks.successRate).toBe(false);
    expect(s.ok).toBe(false);
  });

  it('fails when the instance never came back or never served again', () => {
    expect(summarize(input({ faulty: { instance: 'users-2', ejections: 1, servedAfterBack: 0 } })).checks.faultyBack).toBe(false);
    expect(summarize(input({ faulty: { instance: 'users-2', ejections: 0, backAtMs: 1, servedAfterBack: 3 } })).checks.faultyEjected).toBe(false);
  });

  it('fails the shift check when the push never applied, and is not ok when interrupted or a process is left', () => {
    expect(summarize(input({ shiftedPhase: 'never' })).checks.shiftedToV2).toBe(false);
    expect(summarize(input({ interrupted: true })).ok).toBe(false);
    expect(summarize(input({ processes: { started: 9, leftRunning: 1, pids: [] } })).ok).toBe(false);
  });
});

// `meshlet demo` end to end: the real command, in quiet mode with a JSON summary, starting a real
// control plane, three users instances, orders and four sidecars as processes.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnMeshlet, stopAll, type Proc } from './harness/process.js';
import { waitFor } from './harness/wait.js';

afterAll(stopAll);

interface Summary {
  ok: boolean;
  interrupted: boolean;
  requests: number;
  successRate: number;
  faulty: { instance: string; ejections: number; backAtS?: number; servedAfterBack: number };
  shift: { configVersion?: string; v2ShareBefore: number; v2ShareAfter: number };
  phases: Array<{ name: string; requests: number; share: Record<string, number> }>;
  checks: Record<string, boolean>;
  processes: { started: number; leftRunning: number; pids: number[] };
}

/** The JSON summary: the last top-level object the command printed. */
function summaryOf(p: Proc): Summary {
  const start = p.lines.lastIndexOf('{');
  expect(start, `no JSON summary in the output:\n${p.output()}`).toBeGreaterThanOrEqual(0);
  return JSON.parse(p.lines.slice(start).join('\n')) as Summary;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('meshlet demo', () => {
  it('keeps client success >= 99.9% while users-2 fails, ejects and readmits it, shifts traffic to v2, and leaves no process', { timeout: 120_000 }, async () => {
    const demo = spawnMeshlet(['demo', '--quiet', '-o', 'json', '--duration', '20s']);
    const code = await demo.exited;
    const s = summaryOf(demo);
    expect(code, demo.output()).toBe(0);
    expect(s.ok).toBe(true);
    expect(s.requests).toBeGreaterThan(200);
    expect(s.successRate).toBeGreaterThanOrEqual(0.999);
    expect(s.faulty.instance).toBe('users-2');
    expect(s.faulty.ejections).toBeGreaterThanOrEqual(1);
    expect(s.faulty.backAtS).toBeDefined();
    expect(s.faulty.servedAfterBack).toBeGreaterThan(0);
    // While failing, users-2 answered (almost) nothing that reached the client.
    const failing = s.phases.find((p) => p.name === 'users-2 failing')!;
    expect(failing.requests).toBeGreaterThan(0);
    expect(failing.share['users-2']).toBeLessThan(0.15);
    // Before the push the three instances share evenly; after it v2 (users-3) takes ~90%.
    expect(s.shift.configVersion).toBe('2');
    expect(s.shift.v2ShareBefore).toBeGreaterThan(0.2);
    expect(s.shift.v2ShareBefore).toBeLessThan(0.5);
    expect(s.shift.v2ShareAfter).toBeGreaterThanOrEqual(0.75);
    expect(Object.values(s.checks).every(Boolean)).toBe(true);
    expect(s.processes.started).toBe(9);
    expect(s.processes.leftRunning).toBe(0);
    await waitFor(() => s.processes.pids.every((pid) => !alive(pid)), { timeoutMs: 5000, what: 'every demo process to be gone' });
  });

  it('stops everything on Ctrl-C (SIGINT) and still prints a summary', { timeout: 90_000 }, async () => {
    const demo = spawnMeshlet(['demo', '-o', 'json', '--duration', '60s']);
    await demo.waitForLine(/^driving \d+ GetOrder requests/, 45_000);
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(130);
    const s = summaryOf(demo);
    expect(s.interrupted).toBe(true);
    expect(s.processes.leftRunning).toBe(0);
    expect(s.processes.pids.length).toBe(9);
    await waitFor(() => s.processes.pids.every((pid) => !alive(pid)), { timeoutMs: 5000, what: 'every demo process to be gone' });
  });

  it('refuses a bad flag, naming it and its env twin, and starts nothing', async () => {
    const demo = spawnMeshlet(['demo', '--quiet'], { env: { MESHLET_DURATION: '3s' } });
    expect(await demo.exited).toBe(2);
    expect(demo.output()).toMatch(/--duration \(MESHLET_DURATION\).*"3s"/);
    expect(demo.output()).not.toMatch(/starting the demo mesh/);
  });
});

// The figures `meshlet demo` ends with (printed for people, or as JSON with -o json), and the
// checks the demo exists to show: success held while one instance failed, the breaker ejected it
// and let it back after it healed, and a config push moved traffic to v2.
import { shares, type DemoEvent, type PhaseTally, type Tally } from './demo-scoreboard.js';

export const MIN_SUCCESS_RATE = 0.999;
/** The pushed route sends 90% to v2; well above a third (the even spread) proves the shift. */
export const MIN_V2_SHARE_AFTER_SHIFT = 0.75;

export interface DemoSummary {
  ok: boolean;
  interrupted: boolean;
  durationS: number;
  requests: number;
  succeeded: number;
  failed: number;
  successRate: number;
  /** Failed requests by what the client saw: status and error codes ("502 USERS_FAILED/UPSTREAM_TIMEOUT"). */
  failures: Record<string, number>;
  rps: number;
  retries: number | undefined;
  retriesSource: 'sidecar metrics' | 'app request counts' | 'unavailable';
  instances: Array<{ instance: string; version: string }>;
  faulty: {
    instance: string;
    faultAtS: number | undefined;
    healAtS: number | undefined;
    ejections: number;
    ejectedAtS: number | undefined;
    backAtS: number | undefined;
    servedAfterBack: number;
  };
  shift: { configVersion: string | undefined; pushedAtS: number | undefined; appliedAtS: number | undefined; v2ShareBefore: number; v2ShareAfter: number };
  phases: Array<{ name: string; fromS: number; toS: number; requests: number; succeeded: number; share: Record<string, number> }>;
  events: Array<{ atS: number; text: string }>;
  checks: { successRate: boolean; faultyEjected: boolean; faultyBack: boolean; shiftedToV2: boolean };
  processes: { started: number; leftRunning: number; pids: number[] };
}

export interface SummaryInput {
  interrupted: boolean;
  elapsedMs: number;
  total: Tally;
  phases: readonly PhaseTally[];
  events: readonly DemoEvent[];
  instances: Array<{ instance: string; version: string }>;
  retries: number | undefined;
  retriesSource: DemoSummary['retriesSource'];
  failures: Record<string, number>;
  faulty: { instance: string; faultAtMs?: number; healAtMs?: number; ejections: number; ejectedAtMs?: number; backAtMs?: number; servedAfterBack: number };
  shift: { configVersion?: string; pushedAtMs?: number; appliedAtMs?: number };
  /** Phase names: the one before the fault (even spread) and the one after the push was applied. */
  beforePhase: string;
  shiftedPhase: string;
  processes: DemoSummary['processes'];
}

const s1 = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms / 100) / 10);

function versionShare(t: Tally | undefined, instances: SummaryInput['instances'], version: string): number {
  if (!t) return 0;
  const sh = shares(t);
  return instances.filter((i) => i.version === version).reduce((a, i) => a + (sh[i.instance] ?? 0), 0);
}

export function summarize(i: SummaryInput): DemoSummary {
  const successRate = i.total.requests === 0 ? 0 : i.total.succeeded / i.total.requests;
  const phase = (name: string) => i.phases.find((p) => p.name === name);
  const servedAfterBack = i.faulty.servedAfterBack;
  const v2ShareBefore = versionShare(phase(i.beforePhase), i.instances, 'v2');
  const v2ShareAfter = versionShare(phase(i.shiftedPhase), i.instances, 'v2');
  const checks = {
    successRate: i.total.requests > 0 && successRate >= MIN_SUCCESS_RATE,
    faultyEjected: i.faulty.ejections > 0,
    faultyBack: i.faulty.backAtMs !== undefined && servedAfterBack > 0,
    shiftedToV2: (phase(i.shiftedPhase)?.succeeded ?? 0) > 0 && v2ShareAfter >= MIN_V2_SHARE_AFTER_SHIFT && v2ShareAfter > v2ShareBefore,
  };
  return {
    ok: !i.interrupted && Object.values(checks).every(Boolean) && i.processes.leftRunning === 0,
    interrupted: i.interrupted,
    durationS: s1(i.elapsedMs)!,
    requests: i.total.requests,
    succeeded: i.total.succeeded,
    failed: i.total.requests - i.total.succeeded,
    successRate,
    failures: i.failures,
    rps: i.elapsedMs > 0 ? Math.round((i.total.requests / i.elapsedMs) * 1000) : 0,
    retries: i.retries,
    retriesSource: i.retriesSource,
    instances: i.instances,
    faulty: {
      instance: i.faulty.instance,
      faultAtS: s1(i.faulty.faultAtMs),
      healAtS: s1(i.faulty.healAtMs),
      ejections: i.faulty.ejections,
      ejectedAtS: s1(i.faulty.ejectedAtMs),
      backAtS: s1(i.faulty.backAtMs),
      servedAfterBack,
    },
    shift: { configVersion: i.shift.configVersion, pushedAtS: s1(i.shift.pushedAtMs), appliedAtS: s1(i.shift.appliedAtMs), v2ShareBefore, v2ShareAfter },
    phases: i.phases.map((p) => ({ name: p.name, fromS: s1(p.startMs)!, toS: s1(p.endMs ?? i.elapsedMs)!, requests: p.requests, succeeded: p.succeeded, share: shares(p) })),
    events: i.events.map((e) => ({ atS: s1(e.atMs)!, text: e.text })),
    checks,
    processes: i.processes,
  };
}

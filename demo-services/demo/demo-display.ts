// How `meshlet demo` shows what happens: a table redrawn in place on a terminal, one plain line per
// second otherwise (CI logs, pipes), and the closing summary for people. Pure text functions; the
// DemoDisplay class only decides where they go.
import { shares, type DemoEvent, type Tally } from './demo-scoreboard.js';
import type { DemoSummary } from './demo-summary.js';

export interface InstanceView {
  instance: string;
  version: string;
  /** Breaker state as orders' sidecar reports it ("closed", "open", "half-open"), or "?" before the first poll. */
  breaker: string;
  ejections: number;
  faulty: boolean;
}

export interface LiveView {
  elapsedMs: number;
  durationMs: number;
  phase: string;
  lastSecond: Tally;
  total: Tally;
  retries: number | undefined;
  instances: readonly InstanceView[];
  events: readonly DemoEvent[];
}

const pct = (x: number) => `${(x * 100).toFixed(x === 1 || x === 0 ? 0 : 1)}%`;
const rate = (t: Tally) => (t.requests === 0 ? '—' : pct(t.succeeded / t.requests));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export function renderTable(v: LiveView): string {
  const last = shares(v.lastSecond);
  const all = shares(v.total);
  const lines = [
    `meshlet demo  ${secs(v.elapsedMs)} / ${secs(v.durationMs)}   phase: ${v.phase}`,
    '',
    `  requests/s ${String(v.lastSecond.requests).padStart(5)}   success (client) last 1s ${rate(v.lastSecond).padStart(6)}  overall ${rate(v.total).padStart(7)}   requests ${v.total.requests}   retries ${v.retries ?? '—'}`,
    '',
    '  instance  version  share last 1s  share overall  breaker     ejections',
    ...v.instances.map(
      (i) =>
        `  ${i.instance.padEnd(9)} ${i.version.padEnd(8)} ${pct(last[i.instance] ?? 0).padStart(13)}  ${pct(all[i.instance] ?? 0).padStart(13)}  ${(i.breaker + (i.faulty ? '*' : '')).padEnd(10)}  ${String(i.ejections).padStart(9)}`,
    ),
    '',
    '  events',
    ...v.events.slice(-7).map((e) => `  ${secs(e.atMs).padStart(6)}  ${e.text}`),
  ];
  return lines.join('\n');
}

export function renderLine(v: LiveView): string {
  const last = shares(v.lastSecond);
  const spread = v.instances.map((i) => `${i.instance}=${pct(last[i.instance] ?? 0)}`).join(' ');
  const breakers = v.instances.map((i) => `${i.instance}:${i.breaker}`).join(' ');
  return `t=${secs(v.elapsedMs)} rps=${v.lastSecond.requests} ok=${rate(v.lastSecond)} total_ok=${rate(v.total)} retries=${v.retries ?? '-'} spread[${spread}] breaker[${breakers}] phase="${v.phase}"`;
}

export function renderSummary(s: DemoSummary): string {
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'FAIL');
  const lines = [
    `meshlet demo summary${s.interrupted ? ' (interrupted)' : ''}: ${s.requests} requests in ${s.durationS}s (${s.rps} rps), ${s.failed} failed, client-seen success ${(s.successRate * 100).toFixed(3)}%, retries ${s.retries ?? 'n/a'} (${s.retriesSource})`,
    '',
    '  phase                         from    to      requests  success   ' + s.instances.map((i) => `${i.instance}(${i.version})`.padStart(13)).join(''),
    ...s.phases.map(
      (p) =>
        `  ${p.name.padEnd(29)} ${`${p.fromS}s`.padEnd(7)} ${`${p.toS}s`.padEnd(7)} ${String(p.requests).padStart(8)}  ${(p.requests === 0 ? '—' : pct(p.succeeded / p.requests)).padStart(7)}   ` +
        s.instances.map((i) => pct(p.share[i.instance] ?? 0).padStart(13)).join(''),
    ),
    ...(s.failed > 0 ? ['', `  failures: ${Object.entries(s.failures).map(([k, n]) => `${k} ×${n}`).join(', ')}`] : []),
    '',
    `  [${mark(s.checks.successRate)}] client-seen success ≥ 99.9% while ${s.faulty.instance} failed: ${(s.successRate * 100).toFixed(3)}%`,
    `  [${mark(s.checks.faultyEjected)}] the breaker ejected ${s.faulty.instance}: ${s.faulty.ejections} ejection(s)${s.faulty.ejectedAtS !== undefined ? `, first at ${s.faulty.ejectedAtS}s` : ''}`,
    `  [${mark(s.checks.faultyBack)}] ${s.faulty.instance} came back after it healed: ${s.faulty.backAtS !== undefined ? `at ${s.faulty.backAtS}s, then served ${s.faulty.servedAfterBack} requests` : 'not seen'}`,
    `  [${mark(s.checks.shiftedToV2)}] config v${s.shift.configVersion ?? '?'} pushed through the control plane moved traffic to v2: ${pct(s.shift.v2ShareBefore)} → ${pct(s.shift.v2ShareAfter)}`,
    '',
    `  processes started ${s.processes.started}, left running ${s.processes.leftRunning}`,
  ];
  return lines.join('\n');
}

/** Where the live view goes: redrawn in place on a TTY, appended as lines otherwise, nowhere when quiet. */
export class DemoDisplay {
  readonly #out: NodeJS.WriteStream;
  readonly #mode: 'table' | 'lines' | 'quiet';
  #drawnLines = 0;
  #printedEvents = 0;

  constructor(out: NodeJS.WriteStream, mode: 'table' | 'lines' | 'quiet') {
    this.#out = out;
    this.#mode = mode;
  }

  /** Setup progress, before the live view starts. */
  note(line: string): void {
    if (this.#mode !== 'quiet') this.#out.write(`${line}\n`);
  }

  show(v: LiveView): void {
    if (this.#mode === 'quiet') return;
    if (this.#mode === 'lines') {
      for (const e of v.events.slice(this.#printedEvents)) this.#out.write(`t=${secs(e.atMs)} event: ${e.text}\n`);
      this.#printedEvents = v.events.length;
      this.#out.write(`${renderLine(v)}\n`);
      return;
    }
    const text = renderTable(v);
    // Move up over the previous drawing and clear to the end of the screen, then draw again.
    const up = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}F\x1b[J` : '';
    this.#out.write(`${up}${text}\n`);
    this.#drawnLines = text.split('\n').length;
  }

  /** The next output starts below the table instead of overwriting it. */
  release(): void {
    this.#drawnLines = 0;
  }
}

// What the demo's client saw: per-second buckets for the live display, per-phase totals for the
// summary (which users instance answered, how many requests failed), and the timeline of events.
import type { Clock } from '../../core/clock.js';

export interface Tally {
  requests: number;
  succeeded: number;
  /** Successful answers by the users instance that served them. */
  byInstance: Record<string, number>;
}

export interface PhaseTally extends Tally {
  name: string;
  startMs: number;
  endMs: number | undefined;
}

export interface DemoEvent {
  atMs: number;
  text: string;
}

const emptyTally = (instances: readonly string[]): Tally => ({ requests: 0, succeeded: 0, byInstance: Object.fromEntries(instances.map((i) => [i, 0])) });

function add(t: Tally, ok: boolean, instance: string | undefined): void {
  t.requests++;
  if (!ok) return;
  t.succeeded++;
  if (instance !== undefined) t.byInstance[instance] = (t.byInstance[instance] ?? 0) + 1;
}

/** Each instance's share of the successful answers (0..1); all 0 when there were none. */
export function shares(t: Tally): Record<string, number> {
  const served = Object.values(t.byInstance).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries(t.byInstance).map(([k, v]) => [k, served === 0 ? 0 : v / served]));
}

export class DemoScoreboard {
  readonly #clock: Clock;
  readonly #instances: readonly string[];
  #t0 = 0;
  readonly #seconds = new Map<number, Tally>();
  readonly #total: Tally;
  readonly #phases: PhaseTally[] = [];
  readonly #events: DemoEvent[] = [];

  constructor(clock: Clock, instances: readonly string[]) {
    this.#clock = clock;
    this.#instances = instances;
    this.#total = emptyTally(instances);
  }

  start(firstPhase: string): void {
    this.#t0 = this.#clock.now();
    this.#phases.push({ name: firstPhase, startMs: 0, endMs: undefined, ...emptyTally(this.#instances) });
  }

  elapsedMs(): number {
    return this.#clock.now() - this.#t0;
  }

  setPhase(name: string): void {
    const now = this.elapsedMs();
    const cur = this.#phases.at(-1);
    if (cur) cur.endMs = now;
    this.#phases.push({ name, startMs: now, endMs: undefined, ...emptyTally(this.#instances) });
  }

  get phase(): string {
    return this.#phases.at(-1)?.name ?? '';
  }

  event(text: string): DemoEvent {
    const e = { atMs: this.elapsedMs(), text };
    this.#events.push(e);
    return e;
  }

  record(ok: boolean, instance: string | undefined): void {
    const second = Math.floor(this.elapsedMs() / 1000);
    let bucket = this.#seconds.get(second);
    if (!bucket) {
      bucket = emptyTally(this.#instances);
      this.#seconds.set(second, bucket);
      // The display only looks a few seconds back.
      this.#seconds.delete(second - 10);
    }
    add(bucket, ok, instance);
    add(this.#total, ok, instance);
    const phase = this.#phases.at(-1);
    if (phase) add(phase, ok, instance);
  }

  /** The last complete second (requests in it = requests per second). */
  lastSecond(): Tally {
    const second = Math.floor(this.elapsedMs() / 1000) - 1;
    return this.#seconds.get(second) ?? emptyTally(this.#instances);
  }

  total(): Readonly<Tally> {
    return this.#total;
  }

  phases(): readonly PhaseTally[] {
    return this.#phases;
  }

  events(): readonly DemoEvent[] {
    return this.#events;
  }
}

// In-memory registry of sidecar instances with TTL expiry, for the embedded (single-replica) store.
// Instances re-register when they reconnect, so losing it on restart costs one heartbeat round.
// (The etcd store keeps instances under leases instead.)
import { systemClock, type Clock, type TimerHandle } from '../../core/clock.js';
import { meshError } from '../../core/errors.js';
import type { InstanceRecord, InstanceRegistration } from './store.js';

interface Entry {
  record: InstanceRecord;
  timer: TimerHandle;
}

export interface InstanceRegistryOptions {
  clock?: Clock;
  /** Wall time for the records' timestamps. */
  wallClock?: () => Date;
  /** Called after every change, expiry included. */
  onChange: () => void;
}

export class InstanceRegistry {
  #entries = new Map<string, Entry>();
  #clock: Clock;
  #wall: () => Date;
  #onChange: () => void;

  constructor(opts: InstanceRegistryOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#wall = opts.wallClock ?? (() => new Date());
    this.#onChange = opts.onChange;
  }

  list(): InstanceRecord[] {
    return [...this.#entries.values()].map((e) => e.record).sort((a, b) => a.id.localeCompare(b.id));
  }

  register(reg: InstanceRegistration, ttlMs: number): InstanceRecord {
    const old = this.#entries.get(reg.id);
    if (old) this.#clock.clearTimeout(old.timer);
    const now = this.#wall().toISOString();
    const record: InstanceRecord = Object.freeze({ ...reg, labels: { ...reg.labels }, ttlMs, registeredAt: now, lastHeartbeatAt: now });
    this.#entries.set(reg.id, { record, timer: this.#arm(reg.id, ttlMs) });
    this.#onChange();
    return record;
  }

  heartbeat(id: string): InstanceRecord {
    const e = this.#entries.get(id);
    if (!e) throw meshError('NOT_FOUND', `sidecar instance "${id}" is not registered (expired or never registered): register again`, { id });
    this.#clock.clearTimeout(e.timer);
    e.record = Object.freeze({ ...e.record, lastHeartbeatAt: this.#wall().toISOString() });
    e.timer = this.#arm(id, e.record.ttlMs);
    // A heartbeat changes no endpoint, so nobody is told.
    return e.record;
  }

  deregister(id: string): boolean {
    const e = this.#entries.get(id);
    if (!e) return false;
    this.#clock.clearTimeout(e.timer);
    this.#entries.delete(id);
    this.#onChange();
    return true;
  }

  close(): void {
    for (const e of this.#entries.values()) this.#clock.clearTimeout(e.timer);
    this.#entries.clear();
  }

  #arm(id: string, ttlMs: number): TimerHandle {
    const t = this.#clock.setTimeout(() => {
      this.#entries.delete(id);
      this.#onChange();
    }, ttlMs);
    t.unref?.();
    return t;
  }
}

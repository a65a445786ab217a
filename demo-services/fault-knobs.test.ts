import { describe, expect, it } from 'vitest';
import { isMeshError } from '../core/errors.js';
import { FaultKnobs } from './fault-knobs.js';

describe('FaultKnobs', () => {
  it('fails the share of requests given by errorRate (decided by the injected random source)', () => {
    const draws = [0.1, 0.5, 0.29, 0.3, 0.99];
    let i = 0;
    const knobs = new FaultKnobs({ errorRate: 0.3 }, () => draws[i++]!);
    expect(draws.map(() => knobs.decide().fail)).toEqual([true, false, true, false, false]);
  });

  it('never fails at errorRate 0 and always at 1', () => {
    const knobs = new FaultKnobs({}, () => 0);
    expect(knobs.decide().fail).toBe(false);
    knobs.update({ errorRate: 1 });
    expect(knobs.decide().fail).toBe(true);
  });

  it('merges a partial update and reports a crash request without storing it', () => {
    const knobs = new FaultKnobs({ latencyMs: 20 });
    const r = knobs.update({ hang: true, crash: true });
    expect(r.crash).toBe(true);
    expect(knobs.settings).toEqual({ errorRate: 0, latencyMs: 20, hang: true });
    expect(knobs.decide()).toMatchObject({ hang: true, latencyMs: 20 });
  });

  it('rejects a bad update whole, naming every bad field, and changes nothing', () => {
    const knobs = new FaultKnobs({ errorRate: 0.1 });
    let err: unknown;
    try {
      knobs.update({ errorRate: 0.5, latencyMs: -1, hang: 'yes', extra: 1 });
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'BAD_REQUEST')).toBe(true);
    const paths = ((err as { details: { violations: Array<{ path: string }> } }).details.violations).map((v) => v.path).sort();
    expect(paths).toEqual(['(body)', 'hang', 'latencyMs']);
    expect(knobs.settings).toEqual({ errorRate: 0.1, latencyMs: 0, hang: false });
  });

  it('rejects a body that is no object', () => {
    const knobs = new FaultKnobs();
    expect(() => knobs.update([1])).toThrow(/invalid fault settings/);
    expect(() => knobs.update({ crash: false })).toThrow(/crash/);
  });
});

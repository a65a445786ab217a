import { describe, expect, it } from 'vitest';
import type { Handler } from '../../core/handler.js';
import { split } from './split.js';

const named = (name: string): Handler => async () => ({ status: 200, headers: { backend: name }, body: null });
const ctx = { signal: new AbortController().signal, deadline: Infinity, attempt: 1, info: { attempts: 1, retries: 0 } };
const req = { method: 'GET', path: '/', authority: 's', headers: {}, body: null, bodyless: true };
const pick = async (h: Handler): Promise<string> => String((await h(req, ctx)).headers.backend);

describe('split', () => {
  it('chooses by weight with the injected random number', async () => {
    let r = 0;
    const h = split([{ handler: named('v1'), weight: 90 }, { handler: named('v2'), weight: 10 }], () => r);
    for (const [value, expected] of [[0, 'v1'], [0.5, 'v1'], [0.8999, 'v1'], [0.9, 'v2'], [0.9999, 'v2']] as const) {
      r = value;
      expect(await pick(h)).toBe(expected);
    }
  });

  it('never chooses a backend of weight 0', async () => {
    let r = 0;
    const h = split([{ handler: named('off'), weight: 0 }, { handler: named('a'), weight: 1 }, { handler: named('b'), weight: 1 }], () => r);
    const seen = new Set<string>();
    for (r = 0; r < 1; r += 0.05) seen.add(await pick(h));
    expect([...seen].sort()).toEqual(['a', 'b']);
  });

  it('returns the only live backend\'s handler itself (no per-request cost)', () => {
    const only = named('only');
    expect(split([{ handler: only, weight: 5 }])).toBe(only);
    expect(split([{ handler: named('off'), weight: 0 }, { handler: only, weight: 1 }])).toBe(only);
  });

  it('decides per call, so a retry may cross to the other backend', async () => {
    const values = [0.1, 0.95];
    const h = split([{ handler: named('v1'), weight: 90 }, { handler: named('v2'), weight: 10 }], () => values.shift()!);
    expect([await pick(h), await pick(h)]).toEqual(['v1', 'v2']);
  });
});

// The error registry (core/errors.ts) and docs/errors.md must list the same codes with the same
// statuses: adding a code is one line in each, and this test fails when one is forgotten.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../core/errors.js';
import { ROOT } from './harness/process.js';

describe('error registry', () => {
  const doc = readFileSync(path.join(ROOT, 'docs/errors.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));

  it('documents every registered code with its status', () => {
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      expect(rows.get(code), `docs/errors.md row for ${code}`).toBe(status);
    }
  });

  it('documents no code that the registry does not have', () => {
    const registered = new Set(Object.keys(ERROR_CODES));
    expect([...rows.keys()].filter((c) => !registered.has(c))).toEqual([]);
  });
});

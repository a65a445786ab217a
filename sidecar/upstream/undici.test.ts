// The parts loaded by path must stay undici's own classes: an undici upgrade that moves a file makes
// this fail here rather than at a sidecar's first request.
import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import { Agent, errors, Pool, upgrade } from './undici.js';

describe('undici parts', () => {
  it('are the classes undici exports', () => {
    expect(Pool).toBe(undici.Pool);
    expect(Agent).toBe(undici.Agent);
    expect(errors.HTTPParserError).toBe(undici.errors.HTTPParserError);
    expect(errors.UndiciError).toBe(undici.errors.UndiciError);
  });

  it('upgrade() is undici\'s upgrade API, callable on a lone Pool', async () => {
    const pool = new Pool('http://127.0.0.1:9', { connect: { timeout: 1_000 } });
    // Nothing listens on port 9 (discard): the API runs and reports the connect failure.
    await expect(upgrade(pool, { path: '/', method: 'GET' })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await pool.destroy();
  });
});

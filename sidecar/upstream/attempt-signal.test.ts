import { describe, expect, it } from 'vitest';
import { AttemptSignal } from './attempt-signal.js';

describe('AttemptSignal', () => {
  it('runs every listener once with the reason set, and ignores later aborts', () => {
    const s = new AttemptSignal();
    const seen: unknown[] = [];
    s.addEventListener('abort', () => seen.push(['a', s.reason]));
    s.addEventListener('abort', () => seen.push(['b', s.reason]));
    s.abort('first');
    s.abort('second');
    expect(s.aborted).toBe(true);
    expect(s.reason).toBe('first');
    expect(seen).toEqual([['a', 'first'], ['b', 'first']]);
  });

  it('does not call removed listeners, nor listeners added after the abort', () => {
    const s = new AttemptSignal();
    let calls = 0;
    const l1 = (): void => void calls++;
    const l2 = (): void => void (calls += 10);
    s.addEventListener('abort', l1);
    s.addEventListener('abort', l2);
    s.removeEventListener('abort', l1);
    s.removeEventListener('abort', l2);
    s.abort(new Error('x'));
    s.addEventListener('abort', l1);
    expect(calls).toBe(0);
  });

  it('aborts a real undici request it is given as signal', async () => {
    const { createServer } = await import('node:http');
    const { Pool } = await import('undici');
    // The upstream never answers, so only the signal can end the request.
    const server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const pool = new Pool(`http://127.0.0.1:${port}`);
    const s = new AttemptSignal();
    const reason = new Error('cut');
    const pending = pool.request({ method: 'GET', path: '/', signal: s as never });
    s.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await pool.destroy();
    server.close();
  });
});

import { describe, expect, it } from 'vitest';
import { DemoDisplay, renderLine, renderTable, type LiveView } from './demo-display.js';

const view: LiveView = {
  elapsedMs: 5200,
  durationMs: 30_000,
  phase: 'users-2 failing',
  lastSecond: { requests: 200, succeeded: 200, byInstance: { 'users-1': 100, 'users-2': 0, 'users-3': 100 } },
  total: { requests: 1000, succeeded: 999, byInstance: { 'users-1': 400, 'users-2': 199, 'users-3': 400 } },
  retries: 17,
  instances: [
    { instance: 'users-1', version: 'v1', breaker: 'closed', ejections: 0, faulty: false },
    { instance: 'users-2', version: 'v1', breaker: 'open', ejections: 2, faulty: true },
    { instance: 'users-3', version: 'v2', breaker: 'closed', ejections: 0, faulty: false },
  ],
  events: [{ atMs: 4700, text: 'users-2 made faulty' }],
};

class Sink {
  text = '';
  write(s: string) {
    this.text += s;
    return true;
  }
}

describe('demo display', () => {
  it('one plain line carries rate, success, spread, retries, breakers and phase', () => {
    expect(renderLine(view)).toBe(
      't=5.2s rps=200 ok=100% total_ok=99.9% retries=17 spread[users-1=50.0% users-2=0% users-3=50.0%] breaker[users-1:closed users-2:open users-3:closed] phase="users-2 failing"',
    );
  });

  it('the table marks the faulty instance and lists events', () => {
    const t = renderTable(view);
    expect(t).toMatch(/users-2\s+v1\s+0%\s+19\.9%\s+open\*\s+2/);
    expect(t).toMatch(/4\.7s {2}users-2 made faulty/);
  });

  it('redraws in place on a terminal, appends lines otherwise, prints nothing when quiet', () => {
    const tty = new Sink();
    const d = new DemoDisplay(tty as unknown as NodeJS.WriteStream, 'table');
    d.show(view);
    expect(tty.text).not.toContain('\x1b[');
    d.show(view);
    expect(tty.text).toContain(`\x1b[${renderTable(view).split('\n').length}F\x1b[J`);

    const plain = new Sink();
    const p = new DemoDisplay(plain as unknown as NodeJS.WriteStream, 'lines');
    p.show(view);
    p.show(view);
    expect(plain.text.split('\n').filter((l) => l.includes('event: users-2 made faulty'))).toHaveLength(1);
    expect(plain.text).not.toContain('\x1b[');

    const quiet = new Sink();
    const q = new DemoDisplay(quiet as unknown as NodeJS.WriteStream, 'quiet');
    q.note('x');
    q.show(view);
    expect(quiet.text).toBe('');
  });
});

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleepMs } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import { BatchedLineWriter } from './batched-line-writer.js';

/** Counts write calls and keeps what they carried (a synchronous destination, like pino's streams). */
function countingStream() {
  const chunks: string[] = [];
  return { chunks, stream: { write: (s: string) => void chunks.push(s) } };
}

/** A destination that takes a batch only when the test says so (a slow pipe). */
function heldStream() {
  const chunks: string[] = [];
  const waiting: Array<(err?: Error | null) => void> = [];
  return {
    chunks,
    waiting,
    stream: { write: (s: string, done?: (err?: Error | null) => void) => void (chunks.push(s), waiting.push(done!)) },
    release(err?: Error) {
      waiting.shift()!(err ?? null);
    },
  };
}

/** A JSON line of exactly `size` bytes, newline included. */
function line(i: number, size = 200): string {
  const head = `{"n":${i},"pad":"`;
  return `${head}${'x'.repeat(size - head.length - 3)}"}\n`;
}

describe('BatchedLineWriter', () => {
  it('turns many lines into few writes, each of whole lines, in order', async () => {
    const c = countingStream();
    const w = new BatchedLineWriter({ destination: c.stream, clock: new FakeClock() });
    for (let i = 0; i < 10_000; i++) w.write(line(i));
    await w.close();
    // 2 MB of 200-byte lines, 327 to a 64 KiB batch: 31 writes instead of 10,000.
    expect(c.chunks.length).toBe(Math.ceil(10_000 / Math.floor((64 * 1024) / 200)));
    for (const chunk of c.chunks) expect(chunk.endsWith('\n')).toBe(true);
    const ns = c.chunks.join('').trimEnd().split('\n').map((s) => (JSON.parse(s) as { n: number }).n);
    expect(ns).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
  });

  it('writes a lone line when the flush timer fires, without more traffic', () => {
    const clock = new FakeClock();
    const c = countingStream();
    const w = new BatchedLineWriter({ destination: c.stream, clock, flushMs: 200 });
    w.write(line(1));
    w.write(line(2));
    clock.advance(199);
    expect(c.chunks).toEqual([]);
    clock.advance(1);
    expect(c.chunks).toEqual([line(1) + line(2)]);
    // Idle: nothing armed until the next line comes.
    expect(clock.pendingTimers).toBe(0);
    w.write(line(3));
    clock.advance(200);
    expect(c.chunks).toEqual([line(1) + line(2), line(3)]);
  });

  it('takes groups of lines as runs that fill each batch to a line end, in order (writeLines)', async () => {
    const c = countingStream();
    const w = new BatchedLineWriter({ destination: c.stream, clock: new FakeClock(), batchBytes: 4096 });
    // Groups of 64 lines of 150..249 bytes: each group is several 4 KiB batches, cut between lines.
    let n = 0;
    for (let g = 0; g < 50; g++) w.writeLines(Array.from({ length: 64 }, () => line(n, 150 + (n++ % 100))));
    await w.close();
    expect(n).toBe(3_200);
    for (const chunk of c.chunks) {
      expect(chunk.endsWith('\n')).toBe(true);
      expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(4096);
    }
    // Full batches: each is within a line (< 250 bytes) of 4 KiB, as with write() a line at a time.
    for (const chunk of c.chunks.slice(0, -1)) expect(Buffer.byteLength(chunk)).toBeGreaterThan(4096 - 250);
    const ns = c.chunks.join('').trimEnd().split('\n').map((s) => (JSON.parse(s) as { n: number }).n);
    expect(ns).toEqual(Array.from({ length: 3_200 }, (_, i) => i));
  });

  it('keeps lines whole in a group with multi-byte characters or a line longer than a batch', async () => {
    const c = countingStream();
    const w = new BatchedLineWriter({ destination: c.stream, clock: new FakeClock(), batchBytes: 1024 });
    const long = `{"n":"long","pad":"${'y'.repeat(3000)}"}\n`;
    const group = [...Array.from({ length: 20 }, (_, i) => `{"n":${i},"s":"${'é€'.repeat(40)}"}\n`), long, line(20), line(21)];
    w.writeLines(group);
    w.writeLines([line(22), long]);
    await w.close();
    const text = c.chunks.join('');
    expect(text).toBe(group.join('') + line(22) + long);
    for (const chunk of c.chunks) {
      expect(chunk.endsWith('\n')).toBe(true);
      if (!chunk.includes('"long"')) expect(Buffer.byteLength(chunk)).toBeLessThanOrEqual(1024);
    }
  });

  it('drops the lines of a group beyond the queue cap, counts them, and keeps the first ones in order', async () => {
    const h = heldStream();
    const w = new BatchedLineWriter({ destination: h.stream, clock: new FakeClock(), batchBytes: 1024, maxQueuedBytes: 4096 });
    w.writeLines(Array.from({ length: 100 }, (_, i) => line(i)));
    expect(w.dropped).toBeGreaterThan(70);
    const closed = w.close();
    while (h.waiting.length > 0) {
      h.release();
      await Promise.resolve();
    }
    await closed;
    const ns = h.chunks.join('').trimEnd().split('\n').map((s) => (JSON.parse(s) as { n: number }).n);
    expect(ns.length).toBe(100 - w.dropped);
    expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => i));
  });

  it('pulls held lines in before a timed flush, flush() and close(); scheduleFlush() arms the timer for them', async () => {
    const clock = new FakeClock();
    const c = countingStream();
    let held: string[] = [];
    const w: BatchedLineWriter = new BatchedLineWriter({
      destination: c.stream,
      clock,
      flushMs: 200,
      pull: () => {
        const lines = held;
        held = [];
        w.writeLines(lines);
      },
    });
    held.push(line(1));
    w.scheduleFlush();
    clock.advance(199);
    expect(c.chunks).toEqual([]);
    clock.advance(1);
    expect(c.chunks).toEqual([line(1)]);
    expect(clock.pendingTimers).toBe(0);
    held.push(line(2));
    w.flush();
    expect(c.chunks).toEqual([line(1), line(2)]);
    held.push(line(3));
    await w.close();
    expect(c.chunks).toEqual([line(1), line(2), line(3)]);
    held.push(line(4));
    w.scheduleFlush(); // closed: no timer, and the line is not taken
    expect(clock.pendingTimers).toBe(0);
  });

  it('writes to a file descriptor and has every line there after close(), which closes it', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'meshlet-blw-')), 'out.log');
    const fh = await open(file, 'a');
    const w = new BatchedLineWriter({ destination: fh.fd, closeFd: true });
    for (let i = 0; i < 3_000; i++) w.write(line(i));
    await w.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3_000);
    expect(lines[2_999]).toBe(line(2_999).trimEnd());
    // The descriptor is closed: using it again fails.
    await expect(fh.stat()).rejects.toMatchObject({ code: 'EBADF' });
    expect(w.write(line(0))).toBe(false); // after close(): refused, and not counted as a drop
    expect(w.dropped).toBe(0);
  });

  it('drops lines beyond the queue cap while the destination is stuck, counts them, and recovers', async () => {
    const h = heldStream();
    const w = new BatchedLineWriter({ destination: h.stream, batchBytes: 1024, maxQueuedBytes: 4096, clock: new FakeClock() });
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (w.write(line(i, 100))) accepted++;
    // 4096 bytes of 100-byte lines: 41 accepted (the cap is checked before a line), the rest counted.
    expect(accepted).toBe(41);
    expect(w.dropped).toBe(59);
    expect(h.chunks).toHaveLength(1); // one batch in flight; the rest wait behind it
    while (h.waiting.length > 0) h.release();
    w.flush();
    while (h.waiting.length > 0) h.release();
    const ns = h.chunks.join('').trimEnd().split('\n').map((s) => (JSON.parse(s) as { n: number }).n);
    expect(ns).toEqual(Array.from({ length: 41 }, (_, i) => i));
    expect(w.queuedBytes).toBe(0);
    expect(w.write(line(100, 100))).toBe(true);
  });

  it('hands everything queued behind a slow write to the next single write', async () => {
    const h = heldStream();
    const w = new BatchedLineWriter({ destination: h.stream, batchBytes: 1024, clock: new FakeClock() });
    for (let i = 0; i < 50; i++) w.write(line(i, 100)); // 10 lines a batch: 1 in flight, 3 waiting, 1 filling
    expect(h.chunks).toHaveLength(1);
    h.release();
    expect(h.chunks).toHaveLength(2);
    expect(h.chunks[1]).toBe(Array.from({ length: 30 }, (_, i) => line(10 + i, 100)).join(''));
    const closed = w.close();
    h.release();
    h.release();
    await closed;
    expect(h.chunks.join('')).toBe(Array.from({ length: 50 }, (_, i) => line(i, 100)).join(''));
    expect(w.queuedBytes).toBe(0);
  });

  it('survives a failing destination: the batch is counted as dropped, reported, and the next one tried', async () => {
    const h = heldStream();
    const errors: string[] = [];
    const w = new BatchedLineWriter({ destination: h.stream, batchBytes: 1024, clock: new FakeClock(), onError: (e) => errors.push(e.code!) });
    for (let i = 0; i < 15; i++) w.write(line(i, 100)); // 10 lines in a batch: one full batch out, 5 waiting
    h.release(Object.assign(new Error('broken pipe'), { code: 'EPIPE' }));
    expect(errors).toEqual(['EPIPE']);
    expect(w.dropped).toBe(10);
    const closed = w.close();
    h.release();
    await closed;
    expect(h.chunks[1]).toBe(Array.from({ length: 5 }, (_, i) => line(10 + i, 100)).join(''));
    // A destination that throws is handled the same way.
    const t = new BatchedLineWriter({ destination: { write: () => { throw Object.assign(new Error('bad fd'), { code: 'EBADF' }); } }, clock: new FakeClock(), onError: (e) => errors.push(e.code!) });
    t.write(line(1));
    await t.close();
    expect(errors).toEqual(['EPIPE', 'EBADF']);
    expect(t.dropped).toBe(1);
  });

  it('writes the same batch again after EAGAIN (a full non-blocking pipe), losing nothing', () => {
    const clock = new FakeClock();
    const h = heldStream();
    const w = new BatchedLineWriter({ destination: h.stream, clock, retryMs: 100 });
    w.write(line(1));
    w.flush();
    h.release(Object.assign(new Error('try again'), { code: 'EAGAIN' }));
    expect(h.chunks).toHaveLength(1);
    clock.advance(100);
    expect(h.chunks).toEqual([line(1), line(1)]);
    h.release();
    expect(w.dropped).toBe(0);
    expect(w.queuedBytes).toBe(0);
  });

  it('gives a stuck destination closeTimeoutMs at close(), then counts its lines as dropped', async () => {
    const clock = new FakeClock();
    const h = heldStream();
    const w = new BatchedLineWriter({ destination: h.stream, clock, closeTimeoutMs: 1_000 });
    for (let i = 0; i < 3; i++) w.write(line(i));
    let done = false;
    const closed = w.close().then(() => (done = true));
    await Promise.resolve();
    expect(h.chunks).toHaveLength(1);
    clock.advance(999);
    await Promise.resolve();
    expect(done).toBe(false);
    clock.advance(1);
    await closed;
    expect(w.dropped).toBe(3);
    h.release(); // the late answer changes nothing
    expect(w.dropped).toBe(3);
  });

  it('keeps multi-byte characters and a line longer than a batch whole', async () => {
    const c = countingStream();
    const w = new BatchedLineWriter({ destination: c.stream, batchBytes: 256, clock: new FakeClock() });
    const lines = [...Array.from({ length: 40 }, (_, i) => `{"n":${i},"s":"${'é日🙂'.repeat(i % 7)}"}\n`), `{"long":"${'x'.repeat(1000)}"}\n`, '{"after":true}\n'];
    for (const l of lines) w.write(l);
    await w.close();
    for (const chunk of c.chunks) {
      expect(chunk.endsWith('\n')).toBe(true);
      expect(Buffer.byteLength(chunk) <= 256 || chunk === lines[40]).toBe(true);
    }
    expect(c.chunks.join('')).toBe(lines.join(''));
  });

  it('never splits a line on a pipe shared with another writer (writes within PIPE_BUF)', { timeout: 20_000 }, async () => {
    // A real FIFO read by a slow process (~1 MB/s), so the pipe is full most of the time, and the
    // process log writing its own lines into it meanwhile, as pino does on a shared stdout. A write
    // over PIPE_BUF can be cut by the kernel and the other writer's line land inside it.
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlet-pipe-'));
    const fifo = path.join(dir, 'fifo');
    const out = path.join(dir, 'out');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const slowReader = `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(fifo)}, 'r'); const o = fs.openSync(${JSON.stringify(out)}, 'w');
      const b = Buffer.alloc(1024); const nap = new Int32Array(new SharedArrayBuffer(4));
      for (;;) { const n = fs.readSync(fd, b); if (n === 0) break; fs.writeSync(o, b, 0, n); Atomics.wait(nap, 0, 0, 1); }`;
    const reader = spawn(process.execPath, ['-e', slowReader], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => reader.once('exit', resolve));
    const handle = await open(fifo, 'w'); // off the event loop: it waits for the reader's open
    const w = new BatchedLineWriter({ destination: handle.fd, flushMs: 1 });
    const ours = 1500;
    for (let i = 0; i < ours; i++) {
      w.write(`${JSON.stringify({ i, pad: 'a'.repeat(150 + (i % 50)) })}\n`);
      if (i % 50 === 0) {
        writeSync(handle.fd, `{"other":${i}}\n`); // the process log, synchronously, between our batches
        await sleepMs(1);
      }
    }
    await w.close();
    await handle.close(); // the reader sees the end
    expect(await exited).toBe(0);
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    const bad = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad).toEqual([]);
    expect(lines.filter((l) => l.startsWith('{"i":'))).toHaveLength(ours);
    expect(lines.filter((l) => l.startsWith('{"other":'))).toHaveLength(ours / 50);
  });

  it('gets the queued lines of a file out when the process exits without close()', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'meshlet-blw-')), 'out.log');
    const module = path.join(path.dirname(fileURLToPath(import.meta.url)), 'batched-line-writer.ts');
    const script = `import { openSync } from 'node:fs';
      import { BatchedLineWriter } from ${JSON.stringify(module)};
      const w = new BatchedLineWriter({ destination: openSync(${JSON.stringify(file)}, 'a') });
      for (let i = 0; i < 1000; i++) w.write('line ' + i + '\\n');
      process.exit(3);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1000);
    expect(lines[999]).toBe('line 999');
  });
  // Without #exiting the sealed batch would go to the thread pool at exit and race the synchronous
  // writes (lost or out of order); on an idle 2-core machine the pool usually wins, so this test shows
  // the order and completeness, not the race itself.
  it('at exit, writes the lines pull() hands over, in order, where they fill a batch and no write is in flight', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'meshlet-blw-')), 'out.log');
    const module = path.join(path.dirname(fileURLToPath(import.meta.url)), 'batched-line-writer.ts');
    const script = `import { openSync } from 'node:fs';
      import { BatchedLineWriter } from ${JSON.stringify(module)};
      const line = (i) => JSON.stringify({ i, pad: 'x'.repeat(1100) }) + '\\n';
      let held = [];
      const w = new BatchedLineWriter({ destination: openSync(${JSON.stringify(file)}, 'a'), pull: () => { w.writeLines(held); held = []; } });
      w.writeLines(Array.from({ length: 64 }, (_, i) => line(i))); // ~71 KB: one 64 KiB batch sealed and written, the rest queued
      const deadline = Date.now() + 5000;
      while (w.queuedBytes > 60 * 1024) { if (Date.now() > deadline) process.exit(4); await new Promise((r) => setTimeout(r, 5)); }
      held = Array.from({ length: 64 }, (_, i) => line(64 + i)); // at exit: fills the queued batch, nothing in flight
      process.exit(3);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(3);
    const ns = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i);
    expect(ns).toEqual(Array.from({ length: 128 }, (_, i) => i));
  });
});

// Lines go into a 64 KiB buffer; a full buffer, a short timer or close() hands it to one asynchronous
// write. A line per request then costs a copy into memory, not a system call: at a few thousand lines a
// second that is ~20 writes a second instead of thousands of thread-pool round trips.
import { close as closeFd, fstatSync, write as writeFd, writeSync, writev as writevFd } from 'node:fs';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';

/**
 * A destination that takes text (tests, library use), handed each batch as one string. A write that
 * takes a callback (a Node Writable) is waited for; one that does not is done when it returns.
 */
export interface LineStream {
  write(chunk: string, done?: (err?: Error | null) => void): unknown;
}

export interface BatchedLineWriterOptions {
  /** A file descriptor (written with fs.write, off the event loop) or a stream. */
  destination: number | LineStream;
  /** close() also closes the file descriptor (a file we opened; never stdout). */
  closeFd?: boolean;
  /** A batch is written once it would pass this many bytes. */
  batchBytes?: number;
  /** The longest a line waits for its batch to fill. */
  flushMs?: number;
  /** Lines beyond this many bytes waiting to be written are dropped and counted. */
  maxQueuedBytes?: number;
  /** The wait before writing again to a destination that answered EAGAIN (a full non-blocking pipe). */
  retryMs?: number;
  /** close() gives a destination that cannot take the lines this long, then counts them as dropped. */
  closeTimeoutMs?: number;
  /** A write failed for another reason than EAGAIN; its lines were dropped. */
  onError?: (e: NodeJS.ErrnoException) => void;
  /** Timers (tests); the flush timer is unref()ed where the clock allows. */
  clock?: Clock;
  /**
   * For a caller that holds lines back to format them in groups (the access log): called before every
   * flush that is not a full batch's (the timer's, flush(), close(), and at process exit), so the lines
   * it holds are handed over (with writeLines) and go out with the rest. Arm the timer for them with
   * scheduleFlush().
   */
  pull?: () => void;
}

interface Batch {
  buf: Buffer;
  len: number;
  lines: number;
}

const FREE_BUFFERS = 2;
// Every batch queued goes out in one writev: a write's completion needs a turn of the event loop, so
// one batch per write would cap the writer at 64 KiB per turn however fast the disk (1 MiB here).
const BATCHES_PER_WRITE = 16;
// POSIX makes a write of at most PIPE_BUF bytes to a pipe atomic, so when the process log shares the
// pipe (stdout under a container runtime), its lines can never land inside one of ours. Linux's PIPE_BUF.
const PIPE_BUF = 4096;

/** Whether `fd` is a pipe, socket or terminal: a destination shared line by line with other writers. */
function isStreamFd(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket() || st.isCharacterDevice();
  } catch {
    return false;
  }
}

// A process that exits without close() (an uncaught error, process.exit elsewhere) still gets its last
// lines out, which are the ones that explain the exit. One listener for every open writer.
const openWriters = new Set<BatchedLineWriter>();
let exitHooked = false;

export class BatchedLineWriter {
  readonly #dest: number | LineStream;
  readonly #closeFd: boolean;
  readonly #batchBytes: number;
  readonly #batchesPerWrite: number;
  readonly #maxQueued: number;
  readonly #retryMs: number;
  readonly #closeTimeoutMs: number;
  readonly #onError: (e: NodeJS.ErrnoException) => void;
  #current: Batch;
  readonly #pending: Batch[] = [];
  /** The batches of the write in progress, oldest first; #offset bytes of the first are out already. */
  #inFlight: Batch[] = [];
  #offset = 0;
  #queued = 0;
  #dropped = 0;
  #retrying = false;
  readonly #free: Buffer[] = [];
  readonly #flushMs: number;
  readonly #clock: Clock;
  #timer: TimerHandle | undefined;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  #abandoned = false;
  #exiting = false;
  readonly #pull: (() => void) | undefined;

  constructor(opts: BatchedLineWriterOptions) {
    this.#dest = opts.destination;
    this.#closeFd = opts.closeFd ?? false;
    const shared = typeof opts.destination === 'number' && isStreamFd(opts.destination);
    // On a pipe every write is one whole-lines batch within PIPE_BUF (a longer line still goes alone).
    this.#batchBytes = shared ? Math.min(opts.batchBytes ?? PIPE_BUF, PIPE_BUF) : (opts.batchBytes ?? 64 * 1024);
    this.#batchesPerWrite = shared ? 1 : BATCHES_PER_WRITE;
    this.#maxQueued = opts.maxQueuedBytes ?? 4 * 1024 * 1024;
    this.#retryMs = opts.retryMs ?? 100;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? 5_000;
    this.#onError = opts.onError ?? (() => {});
    this.#flushMs = opts.flushMs ?? 200;
    this.#clock = opts.clock ?? systemClock;
    this.#pull = opts.pull;
    this.#current = this.#newBatch();
    if (typeof this.#dest === 'number') {
      openWriters.add(this);
      if (!exitHooked) {
        exitHooked = true;
        process.once('exit', () => {
          for (const w of openWriters) w.#writeOutSync();
        });
      }
    }
  }

  /** Lines dropped because the destination could not keep up, failed, or did not take them at close(). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes accepted and not written yet. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /**
   * Queues one line (newline included). False when it was dropped (after close(), or counted in
   * `dropped` when the queue is full): a full queue means the destination is slower than the traffic,
   * and a proxy that waited for its log, or buffered without bound, would fail the requests it carries.
   */
  write(line: string): boolean {
    if (this.#closing !== undefined) return false;
    if (this.#queued >= this.#maxQueued) {
      this.#dropped++;
      return false;
    }
    let cur = this.#current;
    // A UTF-16 unit is at most 3 bytes of UTF-8: most lines are known to fit without measuring them.
    if (line.length * 3 > cur.buf.length - cur.len) {
      const size = Buffer.byteLength(line);
      if (size > cur.buf.length - cur.len) {
        this.#seal();
        cur = this.#current;
        if (size > cur.buf.length) {
          // Longer than a whole batch (a pathological path): a batch of its own.
          this.#pending.push({ buf: Buffer.from(line), len: size, lines: 1 });
          this.#queued += size;
          this.#next();
          return true;
        }
      }
    }
    this.#copy(cur, line, 1);
    return true;
  }

  /**
   * Queues lines made together (each ending in a newline) as one or a few copies instead of one a line:
   * a group that fits the batch is one copy; ASCII text (the usual case, where a character is a byte) is
   * cut at line ends into runs that fill each batch, so on a pipe no write splits a line; other text goes
   * line by line. Lines beyond the queue cap are dropped and counted, as write() does.
   */
  writeLines(lines: readonly string[]): void {
    if (this.#closing !== undefined || lines.length === 0) return;
    const text = lines.join('');
    const size = Buffer.byteLength(text);
    let cur = this.#current;
    if (size <= cur.buf.length - cur.len && this.#queued < this.#maxQueued) {
      this.#copy(cur, text, lines.length);
      return;
    }
    if (size !== text.length) {
      for (const l of lines) this.write(l);
      return;
    }
    let at = 0; // offset in text, in characters = bytes
    for (let i = 0; i < lines.length; ) {
      if (this.#queued >= this.#maxQueued) {
        this.#dropped += lines.length - i;
        return;
      }
      cur = this.#current;
      let space = cur.buf.length - cur.len;
      if (lines[i]!.length > space && cur.len > 0) {
        this.#seal();
        cur = this.#current;
        space = cur.buf.length;
      }
      let j = i;
      let end = at;
      while (j < lines.length && end + lines[j]!.length - at <= space) end += lines[j++]!.length;
      if (j === i) {
        this.write(lines[i]!); // longer than a whole batch: a batch of its own
        at += lines[i++]!.length;
        continue;
      }
      this.#copy(cur, text.slice(at, end), j - i);
      at = end;
      i = j;
    }
  }

  /** Starts the flush timer if it is not running: the caller holds lines (see `pull`) due within flushMs. */
  scheduleFlush(): void {
    if (this.#timer === undefined && this.#closing === undefined) this.#armTimer();
  }

  /** Hands the lines queued so far to the destination now. */
  flush(): void {
    this.#pull?.();
    this.#seal();
  }

  #copy(cur: Batch, text: string, lines: number): void {
    const n = cur.buf.write(text, cur.len);
    cur.len += n;
    cur.lines += lines;
    this.#queued += n;
    if (this.#timer === undefined) this.#armTimer();
  }

  /**
   * Writes every queued line, then closes the file descriptor if it is ours. Lines written later are
   * dropped. Gives up after closeTimeoutMs on a destination that takes nothing (a stuck pipe).
   */
  close(): Promise<void> {
    if (this.#closing === undefined) this.#pull?.();
    this.#closing ??= (async () => {
      openWriters.delete(this);
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#seal();
      if (this.#inFlight.length > 0 || this.#pending.length > 0) {
        let timer: TimerHandle | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (this.#drained = resolve)),
          new Promise<void>((resolve) => (timer = this.#clock.setTimeout(resolve, this.#closeTimeoutMs))),
        ]);
        this.#clock.clearTimeout(timer!);
        if (this.#inFlight.length > 0 || this.#pending.length > 0) {
          this.#abandoned = true;
          for (const b of [...this.#inFlight, ...this.#pending]) this.#dropped += b.lines;
          this.#pending.length = 0;
        }
      }
      if (this.#closeFd && typeof this.#dest === 'number') {
        const fd = this.#dest;
        // A write still stuck in the thread pool (timed out above) keeps the descriptor busy; closing
        // under it is what the kernel allows and what we want at exit.
        await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
      }
    })();
    return this.#closing;
  }

  /** At exit: the queued batches, synchronously (those in flight, if any, are the thread pool's). */
  #writeOutSync(): void {
    const fd = this.#dest as number;
    this.#exiting = true; // what pull() hands over stays queued for the loop below, no write is started
    this.#pull?.();
    this.#pending.push(this.#current);
    for (const b of this.#pending) {
      try {
        for (let off = 0; off < b.len; ) off += writeSync(fd, b.buf, off, b.len - off);
      } catch {
        return; // EAGAIN or a failed destination: nothing more can be done at exit
      }
    }
  }

  // Armed by the first line after a flush, not on an interval: an idle writer never wakes. unref(): a
  // line waiting for its batch must not keep the process alive (close() flushes).
  #armTimer(): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#pull?.(); // while #timer is still set: the lines it hands over do not arm another timer
      this.#timer = undefined;
      this.#seal();
    }, this.#flushMs);
    this.#timer.unref?.();
  }

  #newBatch(): Batch {
    return { buf: this.#free.pop() ?? Buffer.allocUnsafeSlow(this.#batchBytes), len: 0, lines: 0 };
  }

  #seal(): void {
    if (this.#current.len === 0) return;
    this.#pending.push(this.#current);
    this.#current = this.#newBatch();
    this.#next();
  }

  /** Starts the next write unless one is in flight (one writer keeps the lines in order). */
  #next(): void {
    if (this.#inFlight.length > 0 || this.#retrying || this.#exiting) return;
    if (this.#pending.length === 0) {
      this.#drained?.();
      return;
    }
    this.#inFlight = this.#pending.splice(0, this.#batchesPerWrite);
    this.#offset = 0;
    this.#writeOut();
  }

  #writeOut(): void {
    const batches = this.#inFlight;
    const dest = this.#dest;
    if (typeof dest === 'number') {
      const first = batches[0]!;
      if (batches.length === 1) writeFd(dest, first.buf, this.#offset, first.len - this.#offset, null, this.#written);
      else writevFd(dest, batches.map((b, i) => b.buf.subarray(i === 0 ? this.#offset : 0, b.len)), null, this.#written);
      return;
    }
    let text = '';
    for (const b of batches) text += b.buf.toString('utf8', 0, b.len);
    const size = batches.reduce((n, b) => n + b.len, 0);
    const waits = dest.write.length >= 2;
    let thrown: NodeJS.ErrnoException | null = null;
    try {
      if (waits) dest.write(text, (err) => this.#written(err ?? null, size));
      else dest.write(text);
    } catch (e) {
      thrown = e as NodeJS.ErrnoException;
    }
    if (thrown !== null || !waits) this.#written(thrown, size);
  }

  readonly #written = (err: NodeJS.ErrnoException | null, n: number): void => {
    if (this.#abandoned) return; // counted as dropped when close() gave up on the destination
    if (err !== null && (err.code === 'EAGAIN' || err.code === 'EBUSY')) {
      // A full non-blocking pipe or tty: give its reader time. Referenced, so close() waits for it.
      this.#retrying = true;
      this.#clock.setTimeout(() => {
        this.#retrying = false;
        if (!this.#abandoned) this.#writeOut();
      }, this.#retryMs);
      return;
    }
    const batches = this.#inFlight;
    if (err !== null) {
      // Lost, not crashed: the batches are dropped and counted, and the next ones tried (ENOSPC passes).
      for (const b of batches) this.#dropped += b.lines;
      this.#onError(err);
      n = Infinity;
    }
    // Retire the batches that are out; a partial write resumes inside the first one left.
    n += this.#offset;
    while (batches.length > 0 && n >= batches[0]!.len) {
      const b = batches.shift()!;
      n -= b.len;
      this.#queued -= b.len;
      if (b.buf.length === this.#batchBytes && this.#free.length < FREE_BUFFERS) this.#free.push(b.buf);
    }
    this.#offset = n === Infinity ? 0 : n;
    if (batches.length > 0) this.#writeOut();
    else this.#next();
  };
}

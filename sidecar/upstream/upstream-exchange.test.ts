// UpstreamExchange against undici's side of the contract, played by the test: the calls undici's
// core makes (onConnect, onHeaders, onData, onComplete, onError) in the orders it makes them.
// The real undici behind it is exercised end to end in test/ (large bodies, disconnects, HEAD…).
import { describe, expect, it } from 'vitest';
import { meshError } from '../../core/errors.js';
import type { BodySink, MeshResponse } from '../../core/handler.js';
import { AttemptSignal } from './attempt-signal.js';
import { UpstreamExchange } from './upstream-exchange.js';

class Sink implements BodySink {
  chunks: Buffer[] = [];
  ended = false;
  destroyed: Error | undefined;
  accept = true; // what write() answers
  #drain: Array<() => void> = [];

  write(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return this.accept;
  }
  end(): void {
    this.ended = true;
  }
  destroy(err?: Error): void {
    this.destroyed = err ?? new Error('destroyed');
  }
  once(_event: 'drain', listener: () => void): unknown {
    this.#drain.push(listener);
    return this;
  }
  drain(): void {
    this.accept = true;
    const l = this.#drain;
    this.#drain = [];
    for (const f of l) f();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

function exchange(signal = new AttemptSignal()) {
  let settled: { ok: MeshResponse } | { err: unknown } | undefined;
  const x = new UpstreamExchange('127.0.0.1:9', signal, (e) => (e instanceof Error ? e : new Error(String(e))), (r) => (settled = { ok: r }), (e) => (settled = { err: e }));
  let aborted: Error | undefined;
  let resumed = 0;
  const undici = {
    connect: () => x.onConnect((reason) => (aborted = reason ?? new Error('aborted'))),
    headers: (status: number, raw: string[]) => x.onHeaders(status, raw.map((s) => Buffer.from(s, 'latin1')), () => void resumed++),
    data: (s: string) => x.onData(Buffer.from(s)),
  };
  return { x, undici, settled: () => settled, aborted: () => aborted, resumed: () => resumed };
}

describe('UpstreamExchange', () => {
  it('resolves at the headers with the raw list as received and a lazily parsed object', () => {
    const t = exchange();
    t.undici.connect();
    t.undici.headers(200, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Odd', 'caf\xe9']);
    const r = (t.settled() as { ok: MeshResponse }).ok;
    expect(r.status).toBe(200);
    expect(r.rawHeaders).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Odd', 'caf\xe9']);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    // latin1 round-trips every byte (obs-text) for the relay.
    expect(Buffer.from(r.headers['x-odd'] as string, 'latin1')).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  });

  it('skips informational responses and resolves with the final one', () => {
    const t = exchange();
    t.undici.connect();
    expect(t.undici.headers(103, ['Link', '</a.css>; rel=preload'])).toBe(true);
    expect(t.settled()).toBeUndefined();
    t.undici.headers(200, ['Content-Length', '0']);
    expect((t.settled() as { ok: MeshResponse }).ok.status).toBe(200);
  });

  it('holds chunks that arrive before relay(), pausing the upstream, then relays them in order', () => {
    const t = exchange();
    t.undici.connect();
    t.undici.headers(200, []);
    expect(t.undici.data('he')).toBe(false); // paused until someone takes the body
    const sink = new Sink();
    const done: Array<Error | undefined> = [];
    t.x.onDone((e) => done.push(e));
    t.x.relay(sink);
    expect(t.resumed()).toBe(1);
    expect(t.undici.data('llo')).toBe(true);
    t.x.onComplete();
    expect(sink.text).toBe('hello');
    expect(sink.ended).toBe(true);
    expect(done).toEqual([undefined]);
    expect(t.x.relayedBytes).toBe(5);
  });

  it('passes backpressure through: a full sink pauses the upstream until it drains', () => {
    const t = exchange();
    t.undici.connect();
    t.undici.headers(200, []);
    const sink = new Sink();
    t.x.relay(sink);
    sink.accept = false;
    expect(t.undici.data('a')).toBe(false);
    expect(t.resumed()).toBe(0);
    sink.drain();
    expect(t.resumed()).toBe(1);
    expect(t.undici.data('b')).toBe(true);
  });

  it('a body that breaks off after the headers destroys the sink and reports the error once done', () => {
    const t = exchange();
    t.undici.connect();
    t.undici.headers(200, ['Content-Length', '10']);
    const sink = new Sink();
    const done: Array<Error | undefined> = [];
    t.x.onDone((e) => done.push(e));
    t.x.relay(sink);
    t.undici.data('12345');
    t.x.onError(new Error('socket closed'));
    expect(sink.destroyed?.message).toBe('socket closed');
    expect(sink.ended).toBe(false);
    expect(done).toHaveLength(1);
    expect(done[0]?.message).toBe('socket closed');
  });

  it('discard() reads a small body off (connection kept) and aborts a large one', () => {
    const small = exchange();
    small.undici.connect();
    small.undici.headers(503, []);
    small.undici.data('error page');
    let smallDone = false;
    small.x.onDone(() => (smallDone = true));
    small.x.discard();
    expect(small.resumed()).toBe(1);
    small.x.onComplete();
    expect(smallDone).toBe(true);
    expect(small.aborted()).toBeUndefined();

    const big = exchange();
    big.undici.connect();
    big.undici.headers(503, []);
    big.x.discard();
    for (let i = 0; i < 70 && big.aborted() === undefined; i++) big.undici.data('x'.repeat(1024));
    expect(big.aborted()).toBeInstanceOf(Error);
  });

  it('an aborted signal before the headers aborts undici and rejects with the reason', () => {
    const signal = new AttemptSignal();
    const t = exchange(signal);
    t.undici.connect();
    const reason = meshError('UPSTREAM_TIMEOUT', 'too slow');
    signal.abort(reason);
    expect(t.aborted()).toBe(reason);
    t.x.onError(reason); // what undici does after abort()
    expect((t.settled() as { err: unknown }).err).toBe(reason);
  });

  it('a signal aborted before undici connects aborts at onConnect', () => {
    const signal = new AttemptSignal();
    const t = exchange(signal);
    signal.abort(meshError('CLIENT_CLOSED', 'gone'));
    t.undici.connect();
    expect(t.aborted()?.message).toBe('gone');
  });

  it('onDone registered after the body finished runs at once', () => {
    const t = exchange();
    t.undici.connect();
    t.undici.headers(204, []);
    t.x.onComplete();
    t.x.relay(new Sink());
    let ran = false;
    t.x.onDone(() => (ran = true));
    expect(ran).toBe(true);
  });
});

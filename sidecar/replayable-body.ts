// Linkerd's max_request_bytes: a body is retried only if it fits in a bounded buffer. Bodies of
// unknown length are read up to the limit; past it the buffered part and the rest are streamed on
// as one body, and the request is simply not retried.
import { Readable } from 'node:stream';
import type { MeshRequest } from '../core/handler.js';

/** Makes req's body replayable when it fits in `limit` bytes. Returns whether it did. */
export async function makeReplayable(req: MeshRequest, limit: number): Promise<boolean> {
  if (req.bodyless || req.bufferedBody) return true;
  const body = req.body;
  if (!body) return true;
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) return false;

  const chunks: Buffer[] = [];
  let size = 0;
  const iterator = body[Symbol.asyncIterator]();
  for (;;) {
    const { value, done } = (await iterator.next()) as IteratorResult<Buffer>;
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > limit) {
      req.body = Readable.from(replay(chunks, iterator), { objectMode: false });
      return false;
    }
  }
  req.bufferedBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
  req.body = null;
  return true;
}

async function* replay(head: Buffer[], rest: AsyncIterator<unknown>): AsyncGenerator<Buffer> {
  yield* head;
  for (;;) {
    const { value, done } = (await rest.next()) as IteratorResult<Buffer>;
    if (done) return;
    yield value;
  }
}

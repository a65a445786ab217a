// An upstream that answers with malformed HTTP (bad header bytes, no status line, conflicting
// framing) gets the client a 502 UPSTREAM_PROTOCOL_ERROR from the sidecar, never the bad bytes; valid
// oddities (204 without a body, repeated Set-Cookie, hop-by-hop headers) pass through correctly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'odd' });
  sidecar = await startSidecar({ config: { services: { users: { endpoints: [{ address: up.address }], circuitBreaker: { consecutiveFailures: 1_000 } } } } });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

const answering = (response: string) => ({ 'x-upstream-behaviour': JSON.stringify({ kind: 'raw', response }) });

const malformed: Record<string, string> = {
  'a control byte in a header value': 'HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nContent-Length: 2\r\n\r\nok',
  'no status line': 'garbage\r\n\r\n',
  'Content-Length with Transfer-Encoding': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'a header name that is not a token': 'HTTP/1.1 200 OK\r\nX(Bad): 1\r\nContent-Length: 2\r\n\r\nok',
};

describe('malformed upstream response', () => {
  for (const [name, response] of Object.entries(malformed)) {
    it(`answers 502 UPSTREAM_PROTOCOL_ERROR for ${name}`, async () => {
      const r = await call(sidecar.outbound, { host: 'users', path: '/m', headers: answering(response) });
      expect(r.status).toBe(502);
      expect(r.headers['x-meshlet-error']).toBe('UPSTREAM_PROTOCOL_ERROR');
      expect(r.json().error.code).toBe('UPSTREAM_PROTOCOL_ERROR');
    });
  }

  it('relays 204 without a body, repeated Set-Cookie, and drops hop-by-hop headers', async () => {
    const empty = await call(sidecar.outbound, { host: 'users', path: '/e', headers: answering('HTTP/1.1 204 No Content\r\nX-Kept: 1\r\n\r\n') });
    expect(empty.status).toBe(204);
    expect(empty.text).toBe('');
    expect(empty.headers['x-kept']).toBe('1');
    const cookies = await call(sidecar.outbound, {
      host: 'users',
      path: '/c',
      headers: answering('HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok'),
    });
    expect(cookies.status).toBe(200);
    expect(cookies.text).toBe('ok');
    expect(cookies.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(cookies.headers['x-hop']).toBeUndefined();
    // The upstream's "Connection: close" is its own hop's business: the client's connection stays usable.
    expect(cookies.headers.connection).not.toBe('close');
  });
});

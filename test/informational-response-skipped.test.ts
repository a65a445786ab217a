// An upstream that sends 103 Early Hints before its answer: the sidecar relays the final response
// (informational ones are not forwarded) on both listeners. undici reports each 1xx as headers;
// taking the 103 for the answer once left the client without a response.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar, type SidecarHandle } from './harness/sidecar.js';

let upstream: http.Server;
let address: string;
let sidecar: SidecarHandle;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    res.writeHead(200, { 'content-type': 'text/plain', 'x-path': req.url ?? '' });
    res.end('final answer');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  sidecar = await startSidecar({ config: { services: { hints: { endpoints: [{ address }] } } }, args: ['--app', address] });
}, 120_000);

afterAll(async () => {
  closeClients();
  await stopAll();
  await new Promise((r) => upstream.close(r));
});

describe('informational responses', () => {
  for (const listener of ['outbound', 'inbound'] as const) {
    it(`are skipped and the final response relayed (${listener})`, async () => {
      for (let i = 0; i < 3; i++) {
        const r = await call(sidecar[listener]!, { host: 'hints', path: `/p/${i}` });
        expect(r.status).toBe(200);
        expect(r.text).toBe('final answer');
        expect(r.headers['x-path']).toBe(`/p/${i}`);
      }
      expect(sidecar.proc.child.exitCode).toBeNull();
    });
  }
});

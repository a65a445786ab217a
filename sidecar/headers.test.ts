import { describe, expect, it } from 'vitest';
import { addForwardedHeaders, requestHeadersForUpstream, responseHeadersForClient } from './headers.js';

describe('requestHeadersForUpstream', () => {
  it('drops hop-by-hop headers and Host, keeps end-to-end ones', () => {
    const out = requestHeadersForUpstream({
      host: 'users',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic x',
      te: 'trailers',
      trailer: 'x-checksum',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      expect: '100-continue',
      'http2-settings': 'AAA',
      'content-type': 'application/json',
      'content-length': '12',
      authorization: 'Bearer t',
      'x-request-id': 'r1',
    });
    expect(out).toEqual({ 'content-type': 'application/json', 'content-length': '12', authorization: 'Bearer t', 'x-request-id': 'r1' });
  });

  it('also drops headers that Connection names', () => {
    const out = requestHeadersForUpstream({ connection: 'close, X-Secret ,x-other', 'x-secret': 's', 'x-other': 'o', 'x-kept': 'k' });
    expect(out).toEqual({ 'x-kept': 'k' });
  });

  it('returns a fresh object the caller may change', () => {
    const input = { 'x-a': '1' };
    const out = requestHeadersForUpstream(input);
    out['x-b'] = '2';
    expect(input).toEqual({ 'x-a': '1' });
  });
});

describe('responseHeadersForClient', () => {
  it('returns the same object when there is nothing to remove (no copy on the hot path)', () => {
    const h = { 'content-type': 'text/plain', 'content-length': '3' };
    expect(responseHeadersForClient(h)).toBe(h);
  });

  it('removes hop-by-hop headers and those named in Connection, without touching the input', () => {
    const h = { connection: 'x-internal', 'x-internal': '1', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'content-type': 'text/plain' };
    expect(responseHeadersForClient(h)).toEqual({ 'content-type': 'text/plain' });
    expect(h['x-internal']).toBe('1');
  });
});

describe('addForwardedHeaders', () => {
  it('starts X-Forwarded-* and Forwarded for a first hop', () => {
    const h: Record<string, string | string[] | undefined> = {};
    addForwardedHeaders(h, '10.1.2.3', 'users:8080', 'http');
    expect(h).toEqual({
      'x-forwarded-for': '10.1.2.3',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'users:8080',
      forwarded: 'for=10.1.2.3;host="users:8080";proto=http',
    });
  });

  it('appends this hop and keeps the original proto and host', () => {
    const h: Record<string, string | string[] | undefined> = {
      'x-forwarded-for': '1.1.1.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'shop.example',
      forwarded: 'for=1.1.1.1;proto=https',
    };
    addForwardedHeaders(h, '10.0.0.2', 'users', 'http');
    expect(h['x-forwarded-for']).toBe('1.1.1.1, 10.0.0.2');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-host']).toBe('shop.example');
    expect(h.forwarded).toBe('for=1.1.1.1;proto=https, for=10.0.0.2;host="users";proto=http');
  });

  it('quotes IPv6 nodes, strips quotes from the host, and copes with an unknown client', () => {
    const h: Record<string, string | string[] | undefined> = { 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'] };
    addForwardedHeaders(h, '::1', 'us"ers', 'http');
    expect(h['x-forwarded-for']).toBe('1.1.1.1, 2.2.2.2, ::1');
    expect(h.forwarded).toBe('for="[::1]";host="users";proto=http');
    const u: Record<string, string | string[] | undefined> = {};
    addForwardedHeaders(u, undefined, 'users', 'http');
    expect(u['x-forwarded-for']).toBe('unknown');
  });
});

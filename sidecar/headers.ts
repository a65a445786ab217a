// The one place where hop-by-hop headers are removed and forwarding headers are set (RFC 9110 §7.6.1,
// RFC 7239). Both directions, both listeners go through here.
import type { IncomingHttpHeaders } from 'node:http';
import type { Headers } from '../core/handler.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect', // Node's server already answered 100-continue; undici refuses to send it
  'host', // carried separately as the authority
  'http2-settings',
]);

/**
 * Copies the client's headers without hop-by-hop ones (including any named in Connection).
 * Returns a fresh object: the caller owns it and layers may add to it.
 */
export function requestHeadersForUpstream(h: IncomingHttpHeaders): Headers {
  const out: Headers = {};
  const connection = h.connection;
  const named = connection && connection !== 'keep-alive' && connection !== 'close' ? connectionTokens(connection) : undefined;
  for (const name in h) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = h[name];
  }
  return out;
}

/** Response headers from an upstream, minus hop-by-hop ones, ready for the downstream response. */
export function responseHeadersForClient(h: Headers): Headers {
  const connection = h.connection;
  const named = typeof connection === 'string' && connection !== 'keep-alive' && connection !== 'close' ? connectionTokens(connection) : undefined;
  let out: Headers | undefined;
  for (const name in h) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) {
      out ??= { ...h };
      delete out[name];
    }
  }
  return out ?? h;
}

/**
 * The same for a flat [name, value, …] list as received (original case and order kept, duplicates
 * such as set-cookie kept apart); `close` adds `connection: close` (the sidecar is draining).
 */
export function rawResponseHeadersForClient(raw: readonly string[], close: boolean): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    const v = raw[i + 1]!.toLowerCase();
    if (v === 'keep-alive' || v === 'close') continue;
    for (const t of connectionTokens(v)) (named ??= new Set()).add(t);
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  if (close) out.push('connection', 'close');
  return out;
}

function connectionTokens(v: string): Set<string> {
  return new Set(v.split(',').map((t) => t.trim().toLowerCase()));
}

/** Appends this hop to X-Forwarded-For / -Proto / -Host and Forwarded. */
export function addForwardedHeaders(out: Headers, clientIp: string | undefined, authority: string, proto: string): void {
  const ip = clientIp ?? 'unknown';
  const xff = out['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${ip}` : ip;
  out['x-forwarded-proto'] ??= proto;
  out['x-forwarded-host'] ??= authority;
  const node = ip.includes(':') ? `"[${ip}]"` : ip;
  const fwd = out.forwarded;
  const host = authority.includes('"') || authority.includes('\\') ? authority.replace(/["\\]/g, '') : authority;
  const element = `for=${node};host="${host}";proto=${proto}`;
  out.forwarded = fwd ? `${Array.isArray(fwd) ? fwd.join(', ') : fwd}, ${element}` : element;
}

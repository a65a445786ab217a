export interface HostPort {
  host: string;
  port: number;
}

/** Parses "host:port", "[::1]:port" or ":port" (host defaults). Returns undefined when malformed. */
export function parseHostPort(s: string, defaultHost = '127.0.0.1'): HostPort | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? (m[2] || defaultHost);
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

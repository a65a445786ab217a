// The slice of autocannon's programmatic API the bench uses (the package ships no types).
declare module 'autocannon' {
  interface Options {
    url: string;
    connections: number;
    duration: number;
    amount?: number;
    pipelining?: number;
    headers?: Record<string, string>;
  }
  interface Result {
    duration: number;
    requests: { total: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  }
  interface Instance {
    on(event: 'response', fn: (client: unknown, status: number, bytes: number, responseTimeMs: number) => void): Instance;
    on(event: 'done', fn: (r: Result) => void): Instance;
    stop(): void;
  }
  function autocannon(opts: Options): Instance;
  export default autocannon;
}

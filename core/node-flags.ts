// How meshlet processes run node: the `meshlet` executable's shebang and the Docker image's
// ENTRYPOINT/ENV pass these, and so does everything that spawns `node dist/cli/meshlet.js` on a
// user's behalf (the demo) or to measure it (bench/). `node-flags.test.ts` keeps the shebang and the
// Dockerfile in step with this file. A sidecar is a guest on its service's cores and memory
// (bench/RESULTS.md has the A/B runs behind each line):
// - `--single-threaded-gc`: V8's parallel and concurrent GC helpers, on a 2-core host, cost more CPU
//   than they save in pause (−1.2 µs of CPU per proxied request, −7 MB peak RSS, p99 unchanged).
// - `--v8-pool-size=1`: one V8 background thread (TurboFan and WebAssembly tier-up jobs) instead of
//   four; each thread that compiles also gets its own malloc arena and compiler zones.
// - `--max-semi-space-size=8`: young generation capped at 2×8 MB instead of growing to 2×16 MB under
//   load; a proxy's garbage dies young, so scavenging twice as often costs no measurable CPU.
// - `MALLOC_ARENA_MAX=2`: glibc otherwise keeps up to 8 arenas per core of freed memory resident.
// Together: peak RSS under load 139 → 105 MB in one A/B, CPU per request unchanged within noise.
export const MESHLET_NODE_FLAGS: readonly string[] = ['--single-threaded-gc', '--v8-pool-size=1', '--max-semi-space-size=8'];

/** Environment for a meshlet process (merged over the caller's; set before node starts, so not settable from inside). */
export const MESHLET_NODE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

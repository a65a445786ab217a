// The V8 flags meshlet processes run with: the `meshlet` executable's shebang and the Docker
// image's ENTRYPOINT pass them, and so does everything that spawns `node dist/cli/meshlet.js` on a
// user's behalf (the demo) or to measure it (bench/). A sidecar is a guest on its service's cores:
// V8's parallel and concurrent GC helpers, on a 2-core host, cost more CPU than they save in pause
// (bench/RESULTS.md: −1.2 µs of CPU per proxied request, −7 MB peak RSS, p99 unchanged).
export const MESHLET_NODE_FLAGS: readonly string[] = ['--single-threaded-gc'];

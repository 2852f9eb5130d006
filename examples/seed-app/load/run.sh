#!/usr/bin/env bash
# The load run of examples/seed-app/README.md: a throwaway redis-server and
# the release build of seed-app on free ports, then wrk on /compute/{x} over
# 1000 values (uncached, then cached) and on / (with and without a session).
# Needs redis-server, wrk and curl. Takes about a minute and a half.
set -euo pipefail
cd "$(dirname "$0")/../../.."

cargo build --release -q -p seed-app
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
app_port=$(free_port)
work=$(mktemp -d)
redis-server --port "$redis_port" --save "" --appendonly no --dir "$work" >"$work/redis.log" &
redis_pid=$!
sleep 0.5
REDIS_URL="redis://127.0.0.1:$redis_port" PORT="$app_port" RUST_LOG=warn \
  SESSION_SECRET="$(head -c 48 /dev/urandom | base64)" \
  target/release/seed-app >"$work/app.out" 2>"$work/app.log" &
app_pid=$!
trap 'kill $app_pid $redis_pid 2>/dev/null; rm -rf "$work"' EXIT
until grep -q listening "$work/app.out" 2>/dev/null; do sleep 0.1; done
base="http://127.0.0.1:$app_port"
lua="examples/seed-app/load/compute.lua"

echo "== /compute/{x}, uncached: 1000 values, each asked once (2 s each) =="
# 100 connections for 15 s: about 750 requests, every one a miss.
wrk -t2 -c100 -d15s --timeout 10s --latency -s "$lua" "$base" -- 2
echo "== warming the rest of the 1000 values =="
seq 0 999 | xargs -P 100 -I{} curl -s -o /dev/null "$base/compute/{}"
echo "== /compute/{x}, cached: the same 1000 values, all hits =="
wrk -t2 -c100 -d15s --latency -s "$lua" "$base" -- 2
runs=$(curl -s "$base/compute/0" | sed -n 's/.*id="body-runs">\([0-9]*\)<.*/\1/p')
echo "runs of the operation finished in the app: $runs (1000: one per value)"

echo "== / with a session (one GET of the session key per request) =="
cookie=$(curl -s -o /dev/null -D - -d username=load "$base/login" | sed -n 's/^set-cookie: \(seed_session=[^;]*\).*/\1/p')
wrk -t2 -c100 -d10s --latency -H "Cookie: $cookie" "$base/"
echo "== / without a session (a redirect to /login; Redis not asked) =="
wrk -t2 -c100 -d10s --latency "$base/"

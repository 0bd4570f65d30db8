#!/usr/bin/env bash
# What Sandbar adds to a tool call's latency in `live` mode, where it
# forwards the call to a real MCP server (and records it: every call in its
# store, every session in a cassette with --record).
#
# One server-everything over Streamable HTTP is the upstream throughout. Its
# `echo` tool is called directly, and through `sandbar serve` with a
# scenario whose upstream is that same server, by the same client, in the
# same run: every load session holds a session with each, and alternates
# its calls between them (direct, through, through, direct, …), so the two
# sides see the same machine at the same moments and the upstream's own
# drift falls on both (`sandbar-bench-mcp-load --paired-url`). ROUNDS runs
# of this for each client in CLIENTS,
# at closed loop CONCURRENCY (one call at a time by default: pure latency)
# and at a fixed RATE of calls/s spread over RATE_SESSIONS sessions (each
# side gets half of it). Overhead = through − direct, at p50 and p99, round
# by round.
#
# UPSTREAM=stub puts a fast upstream in server-everything's place: a second
# `sandbar serve` with the stubbed echo of bench/scenarios/echo.yaml (the
# same answer). A Node upstream takes ~2 ms and most of a core per call, and
# on a small machine its CPU, the load generator's and Sandbar's compete;
# against a stub that answers in ~0.2 ms the overhead shown is Sandbar's
# own, with less of the upstream's noise around it.
#
#   bench/proxy-overhead.sh                          # the figures in BENCHMARKS.md
#   DURATION=3s WARMUP=1s ROUNDS=1 bench/proxy-overhead.sh   # a quick look
#
# Settings (environment), with defaults:
#   CLIENTS=raw,rmcp   raw: bench/mcp-load's own client; rmcp: rmcp's,
#                      reusing connections (--keep-alive)
#   CONCURRENCY=1  RATE=200  RATE_SESSIONS=4  DURATION=10s  WARMUP=3s  ROUNDS=2
#   RECORD=1           sandbar serve --record (cassettes); 0 leaves them off
#   UPSTREAM=everything   or stub (see above)
#   OUT=DIR            keep the JSON reports, tables, logs and cassettes there
#   BUILD=0            use the binaries already in target/release
#
# Everything runs on loopback; the load generator, Sandbar and the upstream
# share the machine's cores. Only the processes this script starts are
# stopped, by their ids.
set -euo pipefail
cd "$(dirname "$0")/.."
name_of_script=proxy-overhead
# shellcheck source=bench/lib.sh
. bench/lib.sh

CLIENTS=${CLIENTS:-raw,rmcp}
CONCURRENCY=${CONCURRENCY:-1}
RATE=${RATE:-200}
RATE_SESSIONS=${RATE_SESSIONS:-4}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-2}
RECORD=${RECORD:-1}
UPSTREAM=${UPSTREAM:-everything}

bench_init
prerequisites
machine

case $UPSTREAM in
    everything)
        say "upstream: server-everything over Streamable HTTP"
        start_everything everything
        ;;
    stub)
        say "upstream: sandbar serve bench/scenarios/echo.yaml (stubbed echo)"
        start_sandbar stub serve bench/scenarios/echo.yaml --listen 127.0.0.1:0 --data "$work/stub-data"
        ;;
    *) die "UPSTREAM must be everything or stub, not $UPSTREAM" ;;
esac
upstream_pid=$pid upstream_url=$url

say "sandbar serve, live mode, upstream $upstream_url"
cat >"$work/proxy.yaml" <<EOF
version: 1
name: proxy-overhead
description: an upstream ($UPSTREAM), forwarded live, for the proxy overhead benchmark.
mode: live
upstreams:
  - name: everything
    url: $upstream_url
EOF
cp "$work/proxy.yaml" "$out/proxy.yaml"
record=()
if [ "$RECORD" = 1 ]; then record=(--record "$out/cassettes"); fi
start_sandbar sandbar serve "$work/proxy.yaml" --listen 127.0.0.1:0 --data "$work/data" "${record[@]}"
proxy_pid=$pid proxy_url=$url

# measure CLIENT ROUND: one run of the load generator, both sides paired.
measure() {
    local client=$1 round=$2 client_args
    case $client in
        raw) client_args=(--client raw) ;;
        rmcp) client_args=(--client rmcp --keep-alive) ;;
        *) die "unknown client $client (raw or rmcp)" ;;
    esac
    say "$client client, round $round: direct ($upstream_url) and through ($proxy_url), alternating"
    "$load" --url "$upstream_url" --label direct --server-pid "$upstream_pid" \
        --paired-url "$proxy_url" --paired-label through --paired-server-pid "$proxy_pid" \
        --args "$ARGS" --expect-text "$EXPECT" "${client_args[@]}" \
        --concurrency "$CONCURRENCY" --rate "$RATE" --rate-sessions "$RATE_SESSIONS" \
        --duration "$DURATION" --warmup "$WARMUP" \
        --json "$out/$client.direct.$round.json" --paired-json "$out/$client.through.$round.json" \
        || { alive "$upstream_pid" "$UPSTREAM"; alive "$proxy_pid" sandbar; die "the load ($client, round $round) failed"; }
    alive "$upstream_pid" "$UPSTREAM"
    alive "$proxy_pid" sandbar
}

IFS=, read -r -a clients <<<"$CLIENTS"
for round in $(seq 1 "$ROUNDS"); do
    for client in "${clients[@]}"; do
        measure "$client" "$round"
    done
done

say "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"

stop "$proxy_pid"
if [ "$RECORD" = 1 ]; then
    cassettes=$(find "$out/cassettes" -name '*.jsonl' | wc -l)
    lines=$(find "$out/cassettes" -name '*.jsonl' -exec cat {} + | wc -l)
    echo "sandbar recorded $cassettes cassettes ($lines lines) in $out/cassettes"
fi

for client in "${clients[@]}"; do
    reports=()
    for round in $(seq 1 "$ROUNDS"); do
        reports+=("$out/$client.direct.$round.json" "$out/$client.through.$round.json")
    done
    "$load" overhead --base direct --with through "${reports[@]}" >"$out/$client.overhead.md"
    say "$client client: overhead = through sandbar − direct (µs)"
    cat "$out/$client.overhead.md"
done

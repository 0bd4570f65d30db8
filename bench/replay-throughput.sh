#!/usr/bin/env bash
# Replaying a recorded MCP session: Sandbar (`sandbar replay --repeat`)
# beside mcp-recorder (PyPI, `mcp-recorder replay`), each serving a cassette
# of the same session, recorded through each tool's own recording proxy from
# the same upstream, server-everything over Streamable HTTP.
#
#   bench/replay-throughput.sh                       # the figures in BENCHMARKS.md
#   DURATION=3s WARMUP=1s CONCURRENCY=8 bench/replay-throughput.sh   # a quick look
#
# 1. Record. server-everything runs over HTTP. One session per client
#    (bench/mcp-load --calls: `initialize`, then RECORDED_CALLS `echo` calls
#    with the benchmark message) goes through `mcp-recorder record` (its
#    recording HTTP proxy), then the same sessions through `sandbar serve
#    --record` with a live-mode scenario whose upstream is that server.
# 2. server-everything is stopped: replay is offline.
# 3. Replay. For each client in CLIENTS and each closed-loop level in
#    CONCURRENCY, each replayer is started afresh on its cassette, driven for
#    WARMUP + DURATION (every answer checked against the recorded text), and
#    stopped: Sandbar, then mcp-recorder.
#
# mcp-recorder answers each recorded request once (its matchers consume the
# recording first in, first out) and has no mode that answers a call again,
# so a throughput test that repeats one call needs a cassette that holds it
# many times: its cassette is extended with RECORDER_COPIES copies of the
# recorded `echo` interaction (and 200 of each recorded `initialize`), the
# same as recording that many calls. Sandbar's `--repeat` gives a call's
# last recorded answer again once its recordings are used up. A level that
# needs more answers than the cassette holds fails (the load generator
# counts every error), rather than measuring errors.
#
# mcp-recorder's `record` and `replay` listen on 0.0.0.0 with no option to
# change it; the script runs its command line through a three-line wrapper
# that changes only that (uvicorn's host becomes 127.0.0.1).
#
# FLOORS=1 adds three reference rows per level, to tell what any server could
# do on this machine with this load generator from what Sandbar does:
#   http-floor        bench/mcp-load's `mcp-floor-server --bare`: no MCP SDK,
#                     canned JSON answers from a plain axum handler, the
#                     ceiling of any MCP server over HTTP/1.1 here;
#   http-floor-store  the same plus Sandbar's recording alone (its store and
#                     redactor as libraries: a run per session, two events a
#                     call, the answer once the call's events are durable),
#                     the ceiling of any front in front of this store;
#   http-floor-journal
#                     the floor plus a journal: each call's params and result
#                     redacted and appended to one file as two event lines
#                     (one write) before the answer, the ceiling of any store
#                     whose durability point is a file append.
#
# Settings (environment), with defaults:
#   CLIENTS=raw,rmcp  CONCURRENCY=1,8,32  DURATION=10s  WARMUP=3s  FLOORS=0
#   RECORDED_CALLS=3  RECORDER_COPIES=60000  MATCH=method_params
#   RECORDER_VERSION=0.5.0  STARLETTE_VERSION=0.52.1 (see below)
#   VENV=${XDG_CACHE_HOME:-$HOME/.cache}/sandbar/bench-venv (mcp-recorder is
#        installed there with pip on the first run)
#   OUT=DIR  keep the JSON reports, tables, logs and cassettes there
#   BUILD=0  use the binaries already in target/release
#
# Everything runs on loopback; the load generator and the replayer share the
# machine's cores. Only the processes this script starts are stopped, by
# their ids.
set -euo pipefail
cd "$(dirname "$0")/.."
name_of_script=replay-throughput
# shellcheck source=bench/lib.sh
. bench/lib.sh

CLIENTS=${CLIENTS:-raw,rmcp}
CONCURRENCY=${CONCURRENCY:-1,8,32}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
RECORDED_CALLS=${RECORDED_CALLS:-3}
RECORDER_COPIES=${RECORDER_COPIES:-60000}
MATCH=${MATCH:-method_params}
FLOORS=${FLOORS:-0}
RECORDER_VERSION=${RECORDER_VERSION:-0.5.0}
# mcp-recorder 0.5.0 asks for starlette>=0.52.1 but its recording proxy
# passes `on_shutdown`, which Starlette 1.0 removed: pin the 0.52 line.
STARLETTE_VERSION=${STARLETTE_VERSION:-0.52.1}
VENV=${VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sandbar/bench-venv}

bench_init
prerequisites

say "mcp-recorder $RECORDER_VERSION in $VENV"
command -v python3 >/dev/null || die "python3 (3.10 or later, with venv) is needed for mcp-recorder"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "cannot create a virtual environment in $VENV (is python3-venv installed?)"
fi
installed=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp-recorder"), m.version("starlette"))' 2>/dev/null || true)
if [ "$installed" != "$RECORDER_VERSION $STARLETTE_VERSION" ]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "mcp-recorder==$RECORDER_VERSION" "starlette==$STARLETTE_VERSION" \
        || die "cannot install mcp-recorder==$RECORDER_VERSION (starlette==$STARLETTE_VERSION) from PyPI into $VENV"
fi
recorder_python="$VENV/bin/python"
recorder_versions=$("$recorder_python" -c '
import importlib.metadata as m, platform
print("mcp-recorder", m.version("mcp-recorder"), "(uvicorn", m.version("uvicorn") + ", starlette", m.version("starlette") + ") on Python", platform.python_version())')
cat >"$work/mcp-recorder-local.py" <<'EOF'
# mcp-recorder's own command line, listening on 127.0.0.1 instead of 0.0.0.0.
import sys, uvicorn
from mcp_recorder import cli
serve = uvicorn.run
uvicorn.run = lambda app, *args, **kwargs: serve(app, *args, **{**kwargs, "host": "127.0.0.1"})
sys.exit(cli.main())
EOF
machine
echo "peer:    $recorder_versions"

# start_recorder NAME ARGS...: `mcp-recorder ARGS... --port P` on a free
# port; sets `pid` and `url`.
start_recorder() {
    local name=$1 port attempt; shift
    for attempt in 1 2 3; do
        port=$(free_port)
        "$recorder_python" "$work/mcp-recorder-local.py" "$@" --port "$port" >"$out/$name.stdout" 2>"$out/$name.log" &
        pid=$!; pids+=("$pid")
        url=""
        for _ in $(seq 1 200); do
            if ! kill -0 "$pid" 2>/dev/null; then break; fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                url="http://127.0.0.1:$port/mcp"
                break
            fi
            sleep 0.1
        done
        [ -n "$url" ] && break
        stop "$pid"
        echo "$name did not start on port $port (attempt $attempt): $(tail -n 3 "$out/$name.log")"
    done
    [ -n "$url" ] || die "$name did not start"
    echo "$name: pid $pid at $url"
}

IFS=, read -r -a clients <<<"$CLIENTS"
IFS=, read -r -a levels <<<"$CONCURRENCY"

# record_sessions URL: one session per client, RECORDED_CALLS calls each.
record_sessions() {
    local client
    for client in "${clients[@]}"; do
        "$load" --url "$1" --client "$client" --args "$ARGS" --expect-text "$EXPECT" --calls "$RECORDED_CALLS" \
            || die "the $client session through $1 failed"
    done
}

say "record: server-everything over Streamable HTTP"
start_everything everything
upstream_pid=$pid upstream_url=$url

say "record through mcp-recorder's proxy"
# Its proxy forwards a request for PATH to TARGET + PATH.
start_recorder recorder-record record --target "${upstream_url%/mcp}" --output "$out/mcp-recorder.json"
record_sessions "$url"
# It saves its cassette when interrupted (Ctrl-C); after SIGTERM, uvicorn
# raises the signal again once it has shut down, and the process ends
# before the cassette is written.
stop "$pid" INT
[ -s "$out/mcp-recorder.json" ] || die "mcp-recorder saved no cassette (see $out/recorder-record.log)"
"$recorder_python" "$work/mcp-recorder-local.py" inspect "$out/mcp-recorder.json"

say "record through sandbar serve --record"
cat >"$work/record.yaml" <<EOF
version: 1
name: replay-bench
description: server-everything, forwarded live and recorded, for the replay benchmark.
mode: live
upstreams:
  - name: everything
    url: $upstream_url
EOF
start_sandbar sandbar-record serve "$work/record.yaml" --listen 127.0.0.1:0 --data "$work/record-data" --record "$out/sandbar-cassettes"
record_sessions "$url"
stop "$pid"
# The first session's cassette (every session recorded the same calls).
sandbar_cassette=$(find "$out/sandbar-cassettes" -name '*.jsonl' -printf '%T@ %p\n' | sort -n | head -n 1 | cut -d' ' -f2-)
[ -n "$sandbar_cassette" ] || die "sandbar recorded no cassette"
echo "sandbar cassette: $sandbar_cassette ($(wc -l <"$sandbar_cassette") lines, $(wc -c <"$sandbar_cassette") bytes)"

say "upstream stopped: replay is offline"
stop "$upstream_pid"

say "mcp-recorder's cassette for the load: each recorded echo call $RECORDER_COPIES times"
"$recorder_python" - "$out/mcp-recorder.json" "$out/mcp-recorder-load.json" "$RECORDER_COPIES" <<'EOF'
import json, sys
source, target, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
cassette = json.load(open(source))
requests = [i for i in cassette["interactions"] if i.get("type") == "jsonrpc_request"]
calls = [i for i in requests if i["request"].get("method") == "tools/call"]
inits = [i for i in requests if i["request"].get("method") == "initialize"]
if not calls or not inits:
    sys.exit(f"{source} holds {len(calls)} tools/call and {len(inits)} initialize interactions")
# The recorded calls differ at most in `_meta` (rmcp's client sends a
# progress token), which its matcher leaves out: repeat each distinct one.
def key(interaction):
    params = {k: v for k, v in interaction["request"].get("params", {}).items() if k != "_meta"}
    return json.dumps(params, sort_keys=True)
distinct = {key(i): i for i in calls}
extra = [i for i in inits for _ in range(200)] + [i for i in distinct.values() for _ in range(copies)]
cassette["interactions"] = cassette["interactions"] + extra
json.dump(cassette, open(target, "w"))
print(f"{len(requests)} recorded requests ({len(inits)} initialize, {len(calls)} tools/call); "
      f"{len(cassette['interactions'])} interactions in {target}")
EOF

# replayer NAME LEVEL CLIENT: starts the replayer, drives one level, stops it.
replay_level() {
    local name=$1 client=$2 concurrency=$3
    case $name in
        sandbar) start_sandbar "$name" replay "$sandbar_cassette" --repeat --listen 127.0.0.1:0 --data "$work/replay-data-$client-$concurrency" ;;
        mcp-recorder) start_recorder "$name" replay --cassette "$out/mcp-recorder-load.json" --match "$MATCH" ;;
        http-floor) start_server "$floor" "$name" --bare --nodelay --listen 127.0.0.1:0 ;;
        http-floor-store) start_server "$floor" "$name" --bare --nodelay --listen 127.0.0.1:0 --record "$work/floor-data-$client-$concurrency" ;;
        http-floor-journal) start_server "$floor" "$name" --bare --nodelay --listen 127.0.0.1:0 --journal "$work/floor-journal-$client-$concurrency.jsonl" ;;
    esac
    local client_args=(--client "$client")
    [ "$client" = rmcp ] && client_args+=(--keep-alive)
    "$load" --url "$url" --label "$name" --server-pid "$pid" --args "$ARGS" --expect-text "$EXPECT" \
        "${client_args[@]}" --concurrency "$concurrency" --duration "$DURATION" --warmup "$WARMUP" \
        --json "$out/$client.$name.c$concurrency.json" \
        || { alive "$pid" "$name"; die "the load ($client client, c=$concurrency) against $name failed"; }
    alive "$pid" "$name"
    stop "$pid"
}

for client in "${clients[@]}"; do
    reports=()
    for concurrency in "${levels[@]}"; do
        say "$client client, closed loop at c=$concurrency: $WARMUP warm-up + $DURATION"
        names=(sandbar mcp-recorder)
        [ "$FLOORS" = 1 ] && names+=(http-floor http-floor-store http-floor-journal)
        for name in "${names[@]}"; do
            replay_level "$name" "$client" "$concurrency"
            reports+=("$out/$client.$name.c$concurrency.json")
        done
    done
    "$load" compare --reference mcp-recorder "${reports[@]}" >"$out/$client.comparison.md"
done

say "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
for client in "${clients[@]}"; do
    say "$client client: replay (ratios against mcp-recorder)"
    cat "$out/$client.comparison.md"
done

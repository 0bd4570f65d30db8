#!/usr/bin/env bash
# Stubbed MCP tools/call throughput and latency over Streamable HTTP:
# Sandbar (recording on) beside the reference TypeScript server,
# @modelcontextprotocol/server-everything, and its `echo` tool. The same
# client (bench/mcp-load) drives every server in the same run, one server at
# a time.
#
#   bench/mcp-throughput.sh                          # the figures in BENCHMARKS.md
#   DURATION=4s WARMUP=1s KEEPALIVE=0 bench/mcp-throughput.sh   # a quick look
#
# Servers measured:
#   sandbar            `sandbar serve bench/scenarios/echo.yaml` (sessions, SSE answers)
#   sandbar-stateless  the same with --stateless (no sessions, JSON answers)
#   server-everything  the reference, `node dist/index.js streamableHttp`
#   rmcp-floor         bench/mcp-load's mcp-floor-server: the same rmcp HTTP
#                      service with nothing behind it (no pipeline, no
#                      recording), to tell the SDK's cost from Sandbar's
#   rmcp-floor-store   the floor plus Sandbar's recording alone (its store
#                      and redactor as libraries: two events per call, the
#                      answer sent once the second is durable)
#
# Three passes:
#   1. rmcp's default client, which opens a new TCP connection for every
#      POST: closed loop at CONCURRENCY, then fixed rates RATES shared by
#      RATE_SESSIONS sessions.
#   2. (KEEPALIVE=1) rmcp's client reusing connections, as most HTTP clients
#      do: closed loop at KEEPALIVE_CONCURRENCY and fixed rate KEEPALIVE_RATE;
#      adds rmcp-floor-nodelay (the floor with TCP_NODELAY set).
#   3. (RAW=1) the load generator's own minimal client (`--client raw`:
#      kept-alive HTTP/1.1, a pre-serialized call, 13-35 µs of CPU per call
#      in a closed loop against rmcp's 65-350), so that the shared cores go
#      to the server: closed loop at RAW_CONCURRENCY and fixed rate
#      RAW_RATE; the floor here is rmcp-floor-nodelay.
#
# Settings (environment), with defaults:
#   CONCURRENCY=1,8,32  RATES=200,1000  RATE_SESSIONS=8  DURATION=10s  WARMUP=3s
#   KEEPALIVE=1  KEEPALIVE_CONCURRENCY=8  KEEPALIVE_RATE=1000
#   RAW=1  RAW_CONCURRENCY=8,32  RAW_RATE=1000
#   STATELESS=1 (measure sandbar-stateless)  FLOOR=1 (measure the rmcp floor)
#   OUT=DIR     keep the JSON reports, comparison tables and server logs there
#
# Everything runs on loopback. The load generator shares the machine's cores
# with the server it drives, so calls/s are the pair's; the server CPU time
# per call that it samples from /proc does not depend on that sharing. Only
# the processes this script starts are stopped, by their ids.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

CONCURRENCY=${CONCURRENCY:-1,8,32}
RATES=${RATES:-200,1000}
RATE_SESSIONS=${RATE_SESSIONS:-8}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
KEEPALIVE=${KEEPALIVE:-1}
KEEPALIVE_CONCURRENCY=${KEEPALIVE_CONCURRENCY:-8}
KEEPALIVE_RATE=${KEEPALIVE_RATE:-1000}
RAW=${RAW:-1}
RAW_CONCURRENCY=${RAW_CONCURRENCY:-8,32}
RAW_RATE=${RAW_RATE:-1000}
STATELESS=${STATELESS:-1}
FLOOR=${FLOOR:-1}
MESSAGE="hello from the sandbar benchmark"
ARGS="{\"message\":\"$MESSAGE\"}"
EXPECT="Echo: $MESSAGE"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
sandbar="$CARGO_TARGET_DIR/release/sandbar"
load="$CARGO_TARGET_DIR/release/sandbar-bench-mcp-load"
floor="$CARGO_TARGET_DIR/release/mcp-floor-server"
everything="$root/.ci/node/node_modules/@modelcontextprotocol/server-everything"

work=$(mktemp -d -t sandbar-bench.XXXXXX)
out=${OUT:-$work/out}
mkdir -p "$out"
pids=()

say() { printf '\n==== %s\n' "$*"; }
die() { echo "mcp-throughput: $*" >&2; exit 1; }

# Stops one server this script started: TERM, up to five seconds to end its
# runs, then KILL.
stop() {
    local pid=$1
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Forget it, so that cleanup never signals a recycled id.
    local kept=() p
    for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    pids=("${kept[@]}")
}

cleanup() {
    local status=$?
    local pid
    for pid in "${pids[@]}"; do stop "$pid"; done
    if [ -n "${OUT:-}" ]; then echo "reports and logs kept in $out"; fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Fails, with the end of the server's log, if the server has died.
alive() {
    local pid=$1 name=$2
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "---- $out/$name.log" >&2
        tail -n 30 "$out/$name.log" >&2 || true
        die "$name (pid $pid) died"
    fi
}

# Waits until a server started with its stdout in $out/NAME.stdout prints
# `listening on URL`; sets `url`.
await_endpoint() {
    local pid=$1 name=$2
    url=""
    for _ in $(seq 1 100); do
        url=$(sed -n 's/^listening on //p' "$out/$name.stdout" | head -n 1)
        [ -n "$url" ] && return 0
        alive "$pid" "$name"
        sleep 0.1
    done
    die "$name did not report its endpoint within 10 s"
}

# start NAME KIND [ARGS...]: starts a server and sets `pid` and `url`.
# Sandbar gets a fresh data directory, so every call is recorded from empty.
start() {
    local name=$1 kind=$2; shift 2
    case $kind in
        sandbar)
            "$sandbar" serve bench/scenarios/echo.yaml --listen 127.0.0.1:0 --data "$work/data-$name" "$@" \
                >"$out/$name.stdout" 2>"$out/$name.log" &
            pid=$!; pids+=("$pid")
            await_endpoint "$pid" "$name"
            ;;
        floor)
            "$floor" --listen 127.0.0.1:0 "$@" >"$out/$name.stdout" 2>"$out/$name.log" &
            pid=$!; pids+=("$pid")
            await_endpoint "$pid" "$name"
            ;;
        everything)
            # It listens on $PORT (3001 by default), says so on stderr, and
            # logs a line to stdout for every request: that goes to /dev/null
            # so that a terminal or a growing file does not slow it down. A
            # port picked free can be taken by the time it binds; retry then.
            local port attempt
            for attempt in 1 2 3; do
                port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
                PORT=$port node "$everything/dist/index.js" streamableHttp >/dev/null 2>"$out/$name.log" &
                pid=$!; pids+=("$pid")
                url=""
                for _ in $(seq 1 100); do
                    if ! kill -0 "$pid" 2>/dev/null; then break; fi
                    if grep -q "listening on port $port" "$out/$name.log"; then
                        sleep 0.3  # Express 5 reports bind errors through the same callback.
                        if kill -0 "$pid" 2>/dev/null; then url="http://127.0.0.1:$port/mcp"; fi
                        break
                    fi
                    sleep 0.1
                done
                [ -n "$url" ] && break
                stop "$pid"
                echo "$name did not start on port $port (attempt $attempt): $(tail -n 1 "$out/$name.log")"
            done
            [ -n "$url" ] || die "$name did not start"
            ;;
    esac
    echo "$name: pid $pid at $url"
}

# measure NAME PASS [LOAD ARGS...]: drives the server started last; writes
# $out/PASS.NAME.json.
measure() {
    local name=$1 pass=$2; shift 2
    "$load" --url "$url" --label "$name" --server-pid "$pid" --args "$ARGS" --expect-text "$EXPECT" \
        --duration "$DURATION" --warmup "$WARMUP" --json "$out/$pass.$name.json" "$@" \
        || { alive "$pid" "$name"; die "the load against $name failed"; }
    alive "$pid" "$name"
}

# Shows that Sandbar recorded the calls: its runs and database size.
recorded() {
    local name=$1 data="$work/data-$1"
    "$sandbar" runs list --data "$data" --limit 100000 --json | node -e '
        const runs = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const events = runs.reduce((n, r) => n + (r.event_count ?? r.events ?? 0), 0);
        console.log(`${process.argv[1]} recorded ${events} events in ${runs.length} runs (${process.argv[2]} on disk)`);
    ' "$name" "$(du -sh "$data" | cut -f1)"
}

# bench PASS NAME KIND "SERVER ARGS" [LOAD ARGS...]: one server, start to stop.
bench() {
    local pass=$1 name=$2 kind=$3 server_args=$4; shift 4
    # shellcheck disable=SC2086 # server_args is a word list on purpose
    start "$name" "$kind" $server_args
    measure "$name" "$pass" "$@"
    stop "$pid"
    if [ -d "$work/data-$name" ]; then
        recorded "$name"
        # The next server of that name starts from an empty store again.
        rm -rf "$work/data-$name"
    fi
}

say "build (release)"
cargo build --release --locked -p sandbar -p sandbar-bench-mcp-load

say "node tools"
command -v node >/dev/null || die "node is needed for server-everything (Node 20 or later)"
command -v npm >/dev/null || die "npm is needed to install the Node servers (npm ci --prefix .ci/node)"
if [ ! -f "$everything/dist/index.js" ]; then
    npm ci --prefix .ci/node --no-audit --no-fund --loglevel=error
fi
everything_version=$(node -p "require('$everything/package.json').version")
sdk_version=$(node -p "require('$root/.ci/node/node_modules/@modelcontextprotocol/sdk/package.json').version")

say "machine"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cores:   $(nproc) ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1))"
echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
echo "kernel:  $(uname -r)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min averages before the run; others' work skews the figures)"
if git rev-parse --git-dir >/dev/null 2>&1; then
    revision="commit $(git rev-parse --short HEAD)"
    git diff --quiet HEAD -- crates || revision="$revision, with uncommitted changes in crates/"
else
    revision="not a git checkout"
fi
echo "sandbar: $("$sandbar" --version) ($revision)"
echo "peer:    @modelcontextprotocol/server-everything $everything_version (TypeScript SDK $sdk_version), Node $(node --version)"
echo "client:  sandbar-bench-mcp-load: rmcp $(sed -n '/^name = "rmcp"$/{n;s/version = "\(.*\)"/\1/p}' Cargo.lock) (passes 1, 2); its own raw client on hyper $(sed -n '/^name = "hyper"$/{n;s/version = "\(.*\)"/\1/p}' Cargo.lock) (pass 3)"

pass=default
say "pass 1: rmcp's default client (a new connection per call): closed loop at $CONCURRENCY, then $RATES calls/s over $RATE_SESSIONS sessions; $WARMUP warm-up + $DURATION per level"
levels=(--concurrency "$CONCURRENCY" --rate "$RATES" --rate-sessions "$RATE_SESSIONS")
reports=()
bench $pass sandbar sandbar "" "${levels[@]}"; reports+=("$out/$pass.sandbar.json")
if [ "$STATELESS" = 1 ]; then
    bench $pass sandbar-stateless sandbar "--stateless" "${levels[@]}"; reports+=("$out/$pass.sandbar-stateless.json")
fi
if [ "$FLOOR" = 1 ]; then
    bench $pass rmcp-floor floor "" "${levels[@]}"; reports+=("$out/$pass.rmcp-floor.json")
    bench $pass rmcp-floor-store floor "--record $work/data-rmcp-floor-store" "${levels[@]}"
    reports+=("$out/$pass.rmcp-floor-store.json")
fi
bench $pass server-everything everything "" "${levels[@]}"; reports+=("$out/$pass.server-everything.json")
"$load" compare --reference server-everything "${reports[@]}" >"$out/$pass.comparison.md"

if [ "$KEEPALIVE" = 1 ]; then
    pass=keepalive
    say "pass 2: a client that reuses connections: closed loop at $KEEPALIVE_CONCURRENCY, then $KEEPALIVE_RATE calls/s over $RATE_SESSIONS sessions"
    levels=(--keep-alive --concurrency "$KEEPALIVE_CONCURRENCY" --rate "$KEEPALIVE_RATE" --rate-sessions "$RATE_SESSIONS")
    reports=()
    bench $pass sandbar sandbar "" "${levels[@]}"; reports+=("$out/$pass.sandbar.json")
    if [ "$STATELESS" = 1 ]; then
        bench $pass sandbar-stateless sandbar "--stateless" "${levels[@]}"; reports+=("$out/$pass.sandbar-stateless.json")
    fi
    if [ "$FLOOR" = 1 ]; then
        bench $pass rmcp-floor floor "" "${levels[@]}"; reports+=("$out/$pass.rmcp-floor.json")
        bench $pass rmcp-floor-nodelay floor "--nodelay" "${levels[@]}"; reports+=("$out/$pass.rmcp-floor-nodelay.json")
    fi
    bench $pass server-everything everything "" "${levels[@]}"; reports+=("$out/$pass.server-everything.json")
    "$load" compare --reference server-everything "${reports[@]}" >"$out/$pass.comparison.md"
fi

if [ "$RAW" = 1 ]; then
    pass=raw
    say "pass 3: the raw client (kept-alive HTTP/1.1, little CPU per call): closed loop at $RAW_CONCURRENCY, then $RAW_RATE calls/s over $RATE_SESSIONS sessions"
    levels=(--client raw --concurrency "$RAW_CONCURRENCY" --rate "$RAW_RATE" --rate-sessions "$RATE_SESSIONS")
    reports=()
    bench $pass sandbar sandbar "" "${levels[@]}"; reports+=("$out/$pass.sandbar.json")
    if [ "$STATELESS" = 1 ]; then
        bench $pass sandbar-stateless sandbar "--stateless" "${levels[@]}"; reports+=("$out/$pass.sandbar-stateless.json")
    fi
    if [ "$FLOOR" = 1 ]; then
        bench $pass rmcp-floor-nodelay floor "--nodelay" "${levels[@]}"; reports+=("$out/$pass.rmcp-floor-nodelay.json")
    fi
    bench $pass server-everything everything "" "${levels[@]}"; reports+=("$out/$pass.server-everything.json")
    "$load" compare --reference server-everything "${reports[@]}" >"$out/$pass.comparison.md"
fi

say "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"

say "pass 1: rmcp's default client, a new TCP connection per call (ratios against server-everything)"
cat "$out/default.comparison.md"
if [ "$KEEPALIVE" = 1 ]; then
    say "pass 2: rmcp's client, connections reused (ratios against server-everything)"
    cat "$out/keepalive.comparison.md"
fi
if [ "$RAW" = 1 ]; then
    say "pass 3: the raw client (ratios against server-everything)"
    cat "$out/raw.comparison.md"
fi

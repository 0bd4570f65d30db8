# Shared by the bench scripts (sourced, not run): messages, the servers a
# script starts and their clean-up, the reference server, the machine.
#
# A script sets `name_of_script` and calls `bench_init` (which creates
# `$work`, `$out` and the EXIT trap) before starting anything. Only the
# processes a script starts are stopped, by their ids.

root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
sandbar="$CARGO_TARGET_DIR/release/sandbar"
load="$CARGO_TARGET_DIR/release/sandbar-bench-mcp-load"
floor="$CARGO_TARGET_DIR/release/mcp-floor-server"
everything="$root/.ci/node/node_modules/@modelcontextprotocol/server-everything"
MESSAGE="hello from the sandbar benchmark"
ARGS="{\"message\":\"$MESSAGE\"}"
EXPECT="Echo: $MESSAGE"
pids=()

say() { printf '\n==== %s\n' "$*"; }
die() { echo "${name_of_script:-bench}: $*" >&2; exit 1; }

bench_init() {
    work=$(mktemp -d -t sandbar-bench.XXXXXX)
    out=${OUT:-$work/out}
    mkdir -p "$out"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# stop PID [SIGNAL]: stops one process this script started: SIGNAL (TERM
# by default), up to five seconds to end (Sandbar finishes its runs and
# cassettes then), then KILL.
stop() {
    local pid=$1 signal=${2:-TERM}
    if kill -0 "$pid" 2>/dev/null; then kill -"$signal" "$pid" 2>/dev/null || true; fi
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Forget it, so that clean-up never signals a recycled id.
    local kept=() p
    for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    pids=("${kept[@]}")
}

bench_cleanup() {
    local status=$?
    local pid
    for pid in "${pids[@]}"; do stop "$pid"; done
    if [ -n "${OUT:-}" ]; then echo "reports and logs kept in $out"; fi
    rm -rf "$work"
    exit "$status"
}

# Fails, with the end of its log, if a server has died.
alive() {
    local pid=$1 name=$2
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "---- $out/$name.log" >&2
        tail -n 30 "$out/$name.log" >&2 || true
        die "$name (pid $pid) died"
    fi
}

# Starts Sandbar (`sandbar ARGS...`, which must print `listening on URL`
# first) with its stdout in $out/NAME.stdout; sets `pid` and `url`.
start_sandbar() {
    start_server "$sandbar" "$@"
}

# start_server BINARY NAME ARGS...: as start_sandbar, for any server that
# says `listening on URL` first on stdout (bench/mcp-load's floor server).
start_server() {
    local binary=$1 name=$2; shift 2
    "$binary" "$@" >"$out/$name.stdout" 2>"$out/$name.log" &
    pid=$!; pids+=("$pid")
    url=""
    for _ in $(seq 1 100); do
        url=$(sed -n 's/^listening on //p' "$out/$name.stdout" | head -n 1)
        [ -n "$url" ] && break
        alive "$pid" "$name"
        sleep 0.1
    done
    [ -n "$url" ] || die "$name did not report its endpoint within 10 s"
    echo "$name: pid $pid at $url"
}

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Starts server-everything over Streamable HTTP; sets `pid` and `url`. It
# listens on $PORT, says so on stderr, and logs a line to stdout for every
# request: that goes to /dev/null so that a terminal or a growing file does
# not slow it down. A port picked free can be taken by the time it binds;
# retry then.
start_everything() {
    local name=$1 port attempt
    for attempt in 1 2 3; do
        port=$(free_port)
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
    echo "$name: pid $pid at $url"
}

# Builds Sandbar and the load generator (BUILD=0: uses the binaries already
# built); checks for Node and server-everything.
prerequisites() {
    if [ "${BUILD:-1}" = 1 ]; then
        say "build (release)"
        command -v cargo >/dev/null || die "cargo is needed to build Sandbar and bench/mcp-load"
        cargo build --release --locked -p sandbar -p sandbar-bench-mcp-load
    fi
    [ -x "$sandbar" ] || die "$sandbar is missing: cargo build --release -p sandbar"
    [ -x "$load" ] || die "$load is missing: cargo build --release -p sandbar-bench-mcp-load"
    say "node tools"
    command -v node >/dev/null || die "node is needed for server-everything (Node 20 or later)"
    if [ ! -f "$everything/dist/index.js" ]; then
        command -v npm >/dev/null || die "npm is needed to install the Node servers (npm ci --prefix .ci/node)"
        npm ci --prefix .ci/node --no-audit --no-fund --loglevel=error
    fi
    [ -f "$everything/dist/index.js" ] || die "server-everything is not installed (npm ci --prefix .ci/node)"
    everything_version=$(node -p "require('$everything/package.json').version")
    sdk_version=$(node -p "require('$root/.ci/node/node_modules/@modelcontextprotocol/sdk/package.json').version")
}

# Prints the machine, the load on it and the revision measured.
machine() {
    say "machine"
    echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cores:   $(nproc) ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1))"
    echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel:  $(uname -r)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min averages before the run; others' work skews the figures)"
    local revision
    if git rev-parse --git-dir >/dev/null 2>&1; then
        revision="commit $(git rev-parse --short HEAD)"
        git diff --quiet HEAD -- crates || revision="$revision, with uncommitted changes in crates/"
    else
        revision="not a git checkout"
    fi
    echo "sandbar: $("$sandbar" --version) ($revision)"
    echo "node:    $(node --version); server-everything $everything_version (TypeScript SDK $sdk_version)"
    echo "client:  sandbar-bench-mcp-load: its raw client (hyper $(lock_version hyper)) and rmcp $(lock_version rmcp)"
}

# The version of a crate in Cargo.lock.
lock_version() {
    sed -n "/^name = \"$1\"\$/{n;s/version = \"\\(.*\\)\"/\\1/p}" Cargo.lock | head -n 1
}

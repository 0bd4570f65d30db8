#!/usr/bin/env bash
# What access control costs a stubbed tools/call over Streamable HTTP:
# Sandbar open (no token, no policy) beside the same scenario served with
# `--auth required` and a scoped token (every request authenticated, every
# call checked against the token's scope and counted against its budget in
# the store), and with a scenario policy on top (CEL rules evaluated per
# call). The reference TypeScript server, server-everything, runs in the
# same pass for scale. One client (bench/mcp-load --client raw) drives each
# server in turn.
#
#   bench/access-overhead.sh
#   DURATION=4s WARMUP=1s bench/access-overhead.sh     # a quick look
#
# Settings (environment): CONCURRENCY=1,8,32 DURATION=10s WARMUP=3s
# BUILD=1 (0: use the binaries already built) OUT=DIR (keep reports).
set -euo pipefail
cd "$(dirname "$0")/.."
name_of_script=access-overhead
source bench/lib.sh

CONCURRENCY=${CONCURRENCY:-1,8,32}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}

bench_init
prerequisites
machine

# The echo scenario with a policy of three rules, the last of which
# matches every call of the benchmark.
policy="$work/echo-policy.yaml"
{
    cat bench/scenarios/echo.yaml
    cat <<'EOF'
policy:
  rules:
    - deny: echo
      when: "size(args.message) > 1000"
      message: "messages are short"
    - rate_limit: "*"
      calls: 100000000
      per: 1s
    - allow: echo
      when: "counts.echo >= 0"
EOF
} >"$policy"

# run NAME SCENARIO TOKEN? [SERVE ARGS...]
run() {
    local name=$1 scenario=$2 token=$3; shift 3
    start_sandbar "$name" serve "$scenario" --listen 127.0.0.1:0 --data "$work/data-$name" "$@"
    if [ -n "$token" ]; then export MCP_LOAD_BEARER=$token; else unset MCP_LOAD_BEARER; fi
    "$load" --url "$url" --label "$name" --server-pid "$pid" \
        --client raw --args "$ARGS" --expect-text "$EXPECT" \
        --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" \
        --json "$out/$name.json" \
        || { alive "$pid" "$name"; die "the load against $name failed"; }
    stop "$pid"
}

# issue DATA: a token for the echo tool only, with a budget far above what
# the run makes.
issue() {
    "$sandbar" token issue --data "$1" --allow-tool echo --budget 1000000000 --name bench
}

say "sandbar, open"
run open bench/scenarios/echo.yaml ""

say "sandbar, --auth required, a scoped token"
token=$(issue "$work/data-token")
run token bench/scenarios/echo.yaml "$token" --auth required

say "sandbar, --auth required, a scoped token and a scenario policy"
token=$(issue "$work/data-policy")
run policy "$policy" "$token" --auth required

say "server-everything (reference)"
unset MCP_LOAD_BEARER
start_everything everything
"$load" --url "$url" --label everything --server-pid "$pid" --client raw --args "$ARGS" \
    --expect-text "$EXPECT" --concurrency "$CONCURRENCY" --duration "$DURATION" \
    --warmup "$WARMUP" --json "$out/everything.json"
stop "$pid"

say "compared with sandbar, open"
"$load" compare --reference open "$out/open.json" "$out/token.json" "$out/policy.json" "$out/everything.json"

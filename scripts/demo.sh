#!/usr/bin/env bash
# The main job on the embedded default: the sandbox platform, a daemon with SQLite and
# agents as local processes trading the simulated market (60x speed), in a throw-away
# state dir. Shows the fleet until Ctrl-C, then stops it all.
set -euo pipefail
uv="${UV:-uv}"
agents="${AGENTS:-3}"

state="$(mktemp -d /tmp/agent-fleet-demo.XXXXXX)"
export FLEET_STATE_DIR="$state" FLEET_RUNTIME="${FLEET_RUNTIME:-process}"
export FLEET_PORT="${FLEET_PORT:-8787}" FLEET_SANDBOX_PORT="${FLEET_SANDBOX_PORT:-8788}"
export FLEET_AGENT_CYCLE_SECONDS="${FLEET_AGENT_CYCLE_SECONDS:-2}"
export FLEET_MARKET_TIME_SCALE="${FLEET_MARKET_TIME_SCALE:-60}"
export FLEET_MARKET_ANCHOR="${FLEET_MARKET_ANCHOR:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
export FLEET_CONTROLLER_API_KEY="${FLEET_CONTROLLER_API_KEY:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export FLEET_PLATFORM_URL="http://127.0.0.1:$FLEET_SANDBOX_PORT"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

"$uv" run --frozen fleet sandbox 2>"$state/sandbox.log" &
pids+=($!)
"$uv" run --frozen fleet up 2>"$state/daemon.log" &
pids+=($!)

for _ in $(seq 100); do
    "$uv" run --frozen fleet ls >/dev/null 2>&1 && break
    kill -0 "${pids[1]}" 2>/dev/null || { cat "$state/daemon.log"; exit 1; }
    sleep 0.2
done
"$uv" run --frozen fleet spawn "$agents"
echo "operator API on http://127.0.0.1:$FLEET_PORT (token in $state/operator-token),"
echo "sandbox platform on $FLEET_PLATFORM_URL; Ctrl-C stops everything"
while true; do
    sleep 3
    clear || true
    "$uv" run --frozen fleet ls 2>/dev/null || echo "(the daemon is not answering; see $state/daemon.log)"
done

#!/usr/bin/env bash
# The main job on the embedded default: a daemon with SQLite and agents as local
# processes, in a throw-away state dir. Shows the fleet until Ctrl-C, then stops it all.
set -euo pipefail
uv="${UV:-uv}"
agents="${AGENTS:-3}"

state="$(mktemp -d /tmp/agent-fleet-demo.XXXXXX)"
export FLEET_STATE_DIR="$state" FLEET_RUNTIME="${FLEET_RUNTIME:-process}"
export FLEET_PORT="${FLEET_PORT:-8787}" FLEET_AGENT_CYCLE_SECONDS="${FLEET_AGENT_CYCLE_SECONDS:-2}"

"$uv" run --frozen fleet up 2>"$state/daemon.log" &
daemon=$!
cleanup() {
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

for _ in $(seq 100); do
    "$uv" run --frozen fleet ls >/dev/null 2>&1 && break
    kill -0 "$daemon" 2>/dev/null || { cat "$state/daemon.log"; exit 1; }
    sleep 0.2
done
"$uv" run --frozen fleet spawn "$agents"
echo "operator API on http://127.0.0.1:$FLEET_PORT (token in $state/operator-token); Ctrl-C stops the fleet"
while true; do
    sleep 3
    clear || true
    "$uv" run --frozen fleet ls
done

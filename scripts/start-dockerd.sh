#!/usr/bin/env bash
# Start the Docker engine in the background (as root) unless it already answers, and wait
# for it. CI uses it, and so does the fault suite when it restarts the engine.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
nohup dockerd >>/tmp/dockerd.log 2>&1 &
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
done
echo "the Docker engine did not start; see /tmp/dockerd.log" >&2
exit 1

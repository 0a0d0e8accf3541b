#!/usr/bin/env bash
# Start the Docker engine in the background (as root) unless it already answers, and wait
# for it. CI uses it, and so does the fault suite when it restarts the engine.
#
# Where crun is installed, the engine also gets it as the runtime `crun`, for
# FLEET_AGENT_OCI_RUNTIME=crun (README, `bench scale`). crun refuses a host whose cgroup v2
# tree holds controllers beside the v1 ones (on this kind of machine, hugetlb): each such
# controller is given a v1 hierarchy of its own, the layout systemd's hybrid mode makes.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
flags=()
if crun="$(command -v crun)"; then
    flags+=(--add-runtime "crun=$crun")
    unified=/sys/fs/cgroup/unified/cgroup.controllers
    for controller in $(cat "$unified" 2>/dev/null); do
        mkdir -p "/sys/fs/cgroup/$controller"
        mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller" ||
            echo "warning: could not move cgroup controller $controller to v1: crun will refuse" >&2
    done
fi
nohup dockerd "${flags[@]}" >>/tmp/dockerd.log 2>&1 &
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
done
echo "the Docker engine did not start; see /tmp/dockerd.log" >&2
exit 1

#!/usr/bin/env bash
# A two-node Docker Swarm on one machine (DESIGN §7), for the Swarm tests and benchmark:
# the host's engine is the manager; a second engine ("node2") runs in a network namespace
# joined to the host by a veth pair on 10.231.0.0/24, with its own data and socket.
#   two-node-swarm.sh up [IMAGE...]   start node2, form the swarm, copy the images to node2
#   two-node-swarm.sh down            leave both swarms, stop node2, remove the namespace
# Needs root, iproute2 and util-linux (nsenter, unshare). Prints node2's DOCKER_HOST.
set -euo pipefail
NS=fleet-node2
ROOT=/tmp/fleet-node2
SOCK="unix://$ROOT/docker.sock"
HOST_IP=10.231.0.1
NODE_IP=10.231.0.2
node2() { docker -H "$SOCK" "$@"; }

down() {
    node2 swarm leave --force >/dev/null 2>&1 || true
    docker swarm leave --force >/dev/null 2>&1 || true
    if [ -f "$ROOT/dockerd.pid" ]; then
        kill "$(cat "$ROOT/dockerd.pid")" 2>/dev/null || true
        for _ in $(seq 30); do [ -e "$ROOT/dockerd.pid" ] || break; sleep 0.5; done
    fi
    ip link del fleet-veth0 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    # node2's containers leave mounts under its data root behind
    grep -o " $ROOT[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$ROOT"
}

up() {
    down
    mkdir -p "$ROOT/data" "$ROOT/exec"
    ip netns add "$NS"
    ip link add fleet-veth0 type veth peer name fleet-veth1
    ip link set fleet-veth1 netns "$NS"
    ip addr add "$HOST_IP/24" dev fleet-veth0
    ip link set fleet-veth0 up
    ip netns exec "$NS" ip addr add "$NODE_IP/24" dev fleet-veth1
    ip netns exec "$NS" ip link set fleet-veth1 up
    ip netns exec "$NS" ip link set lo up
    # not `ip netns exec`: it remounts /sys and hides the cgroups from dockerd
    nohup nsenter --net="/var/run/netns/$NS" unshare --uts sh -c "hostname node2; exec dockerd \
        --data-root $ROOT/data --exec-root $ROOT/exec --pidfile $ROOT/dockerd.pid \
        -H $SOCK --bridge none --iptables=false" >"$ROOT/dockerd.log" 2>&1 &
    for _ in $(seq 60); do node2 info >/dev/null 2>&1 && break; sleep 0.5; done
    node2 info >/dev/null || { echo "node2's engine did not start: $ROOT/dockerd.log" >&2; exit 1; }
    docker swarm init --advertise-addr "$HOST_IP" >/dev/null
    node2 swarm join --token "$(docker swarm join-token -q worker)" "$HOST_IP:2377" >/dev/null
    for image in "$@"; do docker save "$image" | node2 load -q >/dev/null; done
    echo "$SOCK"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    *) echo "usage: $0 up [IMAGE...] | down" >&2; exit 2 ;;
esac

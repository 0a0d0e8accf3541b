#!/usr/bin/env bash
# Build a minimal Debian base image with Python from Debian's packages, for machines
# that can reach Debian's mirrors but no container registry (DESIGN §7).
# Reuses the image when it already exists. Needs root, debootstrap and a Docker engine.
set -euo pipefail

image="${1:-agent-fleet-base:bookworm}"
suite="${SUITE:-bookworm}"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image already exists"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$root" >/dev/null
# Drop what an agent never needs: apt lists, docs, man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "built base image $image"

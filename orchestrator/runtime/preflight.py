"""What the Docker engine is asked before any agent starts: settings it would refuse
every agent's start for, each of which would otherwise be a crash loop of its own (or,
for a memory limit of `0`, agents with no limit at all).

The Docker and Swarm backends refuse them when they are made, so `fleet up` stops in one
line; `fleet doctor` reports the limits alike. Every check only reads the engine.
"""

from __future__ import annotations

import json

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.utils import parse_bytes

from orchestrator.runtime import RuntimeFailure, RuntimeUnavailable, placement
from orchestrator.settings import Settings

_MIN_MEMORY = 6 * 1024 * 1024  # the engine refuses a smaller memory limit
# What a call to the engine may raise: docker-py lets a timed-out or refused request's
# `requests` error through as it is
ENGINE_ERRORS = (DockerException, requests.RequestException)
_READY = ("ready", "active")  # a Swarm node's state and availability when it takes tasks


def oci_runtimes(info: dict) -> list[str]:
    """The OCI runtimes an engine's `info()` names, sorted: what FLEET_AGENT_OCI_RUNTIME
    may say."""
    return sorted(info.get("Runtimes") or {})


def manages_swarm(info: dict) -> bool:
    """Whether the engine whose `info()` this is manages a Swarm: only a manager runs
    services and lists nodes."""
    return bool((info.get("Swarm") or {}).get("ControlAvailable"))


def engine_info(client: docker.DockerClient) -> dict:
    """What the engine says of itself (`docker info`)."""
    try:
        return client.info()
    except ENGINE_ERRORS as exc:
        raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None


def refuse_unstartable(settings: Settings, client: docker.DockerClient, swarm: bool) -> None:
    """Raise RuntimeFailure naming the first setting no agent could start with: on Swarm,
    an engine that is no manager; an OCI runtime the engine lacks; an agent image it cannot
    name; then `refuse_bad_limits`."""
    info = engine_info(client)
    if swarm and not manages_swarm(info):
        raise RuntimeUnavailable(
            "the Docker engine is not a Swarm manager: run `docker swarm init` "
            "(or point DOCKER_HOST at a manager)"
        )
    wanted = settings.agent_oci_runtime
    if wanted and wanted not in (known := oci_runtimes(info)):
        raise RuntimeFailure(
            f"FLEET_AGENT_OCI_RUNTIME={wanted}: the engine has no runtime of that name "
            f"(it has {', '.join(known)}): register it with the engine (dockerd "
            f"--add-runtime {wanted}=PATH), or unset the variable"
        )
    _refuse_image_name(settings, client)
    refuse_bad_limits(settings, client, info, swarm)


def _refuse_image_name(settings: Settings, client: docker.DockerClient) -> None:
    """An agent image the engine cannot name (`Bad:Img`). One that is only not built yet
    is fine: agents wait for it, and `fleet doctor` says what to build."""
    try:
        client.api.inspect_image(settings.agent_image)
    except ImageNotFound:
        return
    except APIError as exc:
        if exc.status_code != 400:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        raise RuntimeFailure(
            f"FLEET_AGENT_IMAGE={settings.agent_image!r} is not an image the engine "
            f"can name ({exc.explanation})"
        ) from None
    except ENGINE_ERRORS as exc:
        raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None


def refuse_bad_limits(
    settings: Settings, client: docker.DockerClient, info: dict, swarm: bool
) -> None:
    """Raise RuntimeFailure for a memory limit docker-py cannot read (`96q`) or that is no
    limit (`0`), more CPUs than `_most_cpus`, or on Docker a network the engine lacks
    (Swarm's agents are on its own overlay)."""
    s = settings
    try:
        memory = parse_bytes(s.agent_memory_limit)
    except DockerException as exc:
        raise RuntimeFailure(f"FLEET_AGENT_MEMORY_LIMIT={s.agent_memory_limit!r}: {exc}") from None
    if memory < _MIN_MEMORY:
        raise RuntimeFailure(
            f"FLEET_AGENT_MEMORY_LIMIT={s.agent_memory_limit!r}: at least 6m, the engine's "
            "smallest (0 would leave agents with no limit at all)"
        )
    where, cpus = _most_cpus(settings, client, info, swarm)
    if s.agent_cpus > cpus:
        raise RuntimeFailure(
            f"FLEET_AGENT_CPUS={s.agent_cpus:g}: {where} has {cpus:g} CPUs, and an agent "
            "can be given at most that many"
        )
    if swarm or s.docker_network in ("none", "host", "bridge"):
        return  # the three always exist
    try:
        client.networks.get(s.docker_network)
    except NotFound:
        raise RuntimeFailure(
            f"FLEET_DOCKER_NETWORK={s.docker_network!r}: the engine has no network of that "
            "name: create it (`docker network create`), or unset the variable"
        ) from None
    except ENGINE_ERRORS as exc:
        raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None


def _most_cpus(
    settings: Settings, client: docker.DockerClient, info: dict, swarm: bool
) -> tuple[str, float]:
    """The most CPUs an agent can be given, and where they are (for a message): the
    engine's, or on Swarm those of its largest ready node that FLEET_SWARM_CONSTRAINTS
    admit. A node's engine refuses a task with more, and Swarm would place it again and
    again. On Swarm, RuntimeFailure also names constraints Swarm would refuse, or that no
    node satisfies, down or not (the agents would wait unplaced for ever)."""
    if not swarm:
        return "the engine", float(info.get("NCPU") or "inf")
    constraints = placement.parse(settings.swarm_constraints)
    try:
        nodes = client.api.nodes()
    except ENGINE_ERRORS as exc:
        raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
    admitting = [n for n in nodes if placement.admits(n, constraints)]
    if not admitting:
        names = ", ".join(sorted(n["Description"]["Hostname"] for n in nodes))
        raise RuntimeFailure(
            f"FLEET_SWARM_CONSTRAINTS={json.dumps(settings.swarm_constraints)}: no node of "
            f"the Swarm ({names}) satisfies them, so no agent could be placed: change them, "
            "or label a node to match (`docker node update --label-add KEY=VALUE NODE`)"
        )
    ready = [n for n in admitting if (n["Status"]["State"], n["Spec"]["Availability"]) == _READY]
    found = [n["Description"]["Resources"]["NanoCPUs"] / 1e9 for n in ready]
    where = "the Swarm's largest ready node" + (" the constraints admit" if constraints else "")
    return where, max(found, default=float("inf"))

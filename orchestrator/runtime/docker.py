"""Docker backend: one hardened container per agent (DESIGN §4.1), through the docker SDK.

Containers are found by label only, never by image or name pattern. Restart policy is
`no`: the orchestrator is the one owner of restarts. This module must never put anything
but the three agent variables into a container's environment.

With the network `none` (the default) an agent is confined: it has no network at all,
and the gateway's socket directory, mounted read-only at `/run/fleet`, is the one thing
it can reach; its platform calls go through the gateway's relay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import CancellableStream, LogConfig, Mount

from orchestrator.runtime import (
    LABEL_AGENT_ID,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_SPEC_HASH,
    AgentLaunch,
    ExitInfo,
    ObservedAgent,
    RuntimeEvent,
    RuntimeFailure,
    RuntimeUnavailable,
)
from orchestrator.runtime.observed import ObservedCache
from orchestrator.runtime.preflight import ENGINE_ERRORS, refuse_unstartable
from orchestrator.settings import Settings

AGENT_USER = "10001:10001"
GATEWAY_MOUNT = "/run/fleet"  # where a confined agent finds the gateway's socket
_EXIT_CODE = re.compile(r"^Exited \((-?\d+)\)")
_WATCHED = ["create", "start", "die", "oom", "kill", "stop", "destroy", "pause", "unpause"]
_RECONNECT_CAP = 30.0

log = logging.getLogger("fleet.runtime.docker")


def container_name(instance: str, agent_name: str) -> str:
    """`fleet-<instance>-<agent name>`."""
    return f"fleet-{instance}-{agent_name}"


def _observed(summary: dict) -> ObservedAgent:
    """An ObservedAgent from one entry of the engine's container list."""
    labels = summary.get("Labels") or {}
    exit_match = _EXIT_CODE.match(summary.get("Status") or "")
    created = summary.get("Created")
    return ObservedAgent(
        container_id=summary["Id"],
        agent_id=labels.get(LABEL_AGENT_ID),
        name=(summary.get("Names") or ["?"])[0].lstrip("/"),
        state=summary.get("State", "unknown"),
        exit_code=int(exit_match.group(1)) if exit_match else None,
        spec_hash=labels.get(LABEL_SPEC_HASH, ""),
        started_at=datetime.fromtimestamp(created, UTC) if created else None,
    )


class DockerRuntime:
    """Runtime backed by a Docker engine."""

    name = "docker"
    restarts_itself = False
    restarts_in_place = True
    restart_policy = "no"  # the orchestrator owns restarts (a benchmark's reference: Docker)

    def __init__(self, settings: Settings, client: docker.DockerClient | None = None) -> None:
        self.settings = settings
        try:
            self.client = client or docker.from_env(version="auto", timeout=30)
            self.client.ping()
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        refuse_unstartable(settings, self.client, swarm=self.name == "swarm")
        self._events: CancellableStream | None = None
        self._observed = ObservedCache(settings.observe_resync_seconds, time.monotonic)

    # -- spec ---------------------------------------------------------------

    def image(self) -> str:
        """The image ID FLEET_AGENT_IMAGE names now; "" while there is none."""
        try:
            return self.client.api.inspect_image(self.settings.agent_image)["Id"]
        except ImageNotFound:
            return ""
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None

    def spec_hash(self, image: str) -> str:
        """Hash of a container's config with `image`; one with another hash is replaced."""
        s = self.settings
        spec = {
            "image_id": image,
            "network": s.docker_network,
            "gateway_url": s.gateway_url,
            "gateway_dir": str(s.gateway_dir),
            "memory": s.agent_memory_limit,
            "pids": s.agent_pids_limit,
            "cpus": s.agent_cpus,
            "user": AGENT_USER,
        }
        if s.agent_oci_runtime:  # only when set: agents made before the setting keep their hash
            spec["oci_runtime"] = s.agent_oci_runtime
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    # -- operations ---------------------------------------------------------

    def _instance_labels(self, **more: str) -> dict[str, str]:
        return {LABEL_MANAGED: "true", LABEL_INSTANCE: self.settings.instance, **more}

    def _labels(self, launch: AgentLaunch) -> dict[str, str]:
        ids = {LABEL_AGENT_ID: launch.agent_id, LABEL_SPEC_HASH: launch.spec_hash}
        return self._instance_labels(**ids)

    @property
    def confined(self) -> bool:
        """Whether agents run without a network, reaching only the gateway's socket."""
        return self.settings.docker_network == "none"

    def _network(self) -> dict[str, object]:
        """The host config's network: none (with the gateway's socket mounted), or the
        network FLEET_DOCKER_NETWORK names (host, bridge or one of the operator's).

        A confined container is also created with its network disabled (`create`): it
        still gets a namespace of its own with only `lo`, but the engine then neither
        builds it a libnetwork sandbox nor has runc run its network hook, a fresh
        `dockerd` process per container. They were a third of the machine's CPU for each
        agent started (README, `bench scale`)."""
        if self.confined:
            gateway = Mount(GATEWAY_MOUNT, str(self.settings.gateway_dir), "bind", read_only=True)
            return {"network_mode": "none", "mounts": [gateway]}
        return {"network_mode": self.settings.docker_network}

    def _environment(self, launch: AgentLaunch) -> dict[str, str]:
        environment = launch.environment()
        if self.confined:
            socket = f"{GATEWAY_MOUNT}/{self.settings.gateway_socket.name}"
            environment["FLEET_GATEWAY_URL"] = f"unix://{socket}"
        return environment

    def create(self, launch: AgentLaunch) -> ObservedAgent:
        """Create and start the agent's container, adopting one that already has its name.
        Two calls to the engine, not the SDK's four: its container objects inspect the
        container after creating it and again to reload it. Those two inspections were a
        tenth of the daemon's busy time while 1,000 agents spawned, and the engine serves
        them on the same two cores."""
        s = self.settings
        name = container_name(s.instance, launch.name)
        labels = self._labels(launch)
        api = self.client.api
        try:
            host_config = api.create_host_config(
                read_only=True,
                tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                pids_limit=s.agent_pids_limit,
                mem_limit=s.agent_memory_limit,
                nano_cpus=int(s.agent_cpus * 1e9),
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "3"}),
                init=True,
                restart_policy={"Name": self.restart_policy},
                runtime=s.agent_oci_runtime or None,
                **self._network(),
            )
            container_id = api.create_container(
                launch.image or s.agent_image,
                name=name,
                labels=labels,
                environment=self._environment(launch),
                user=AGENT_USER,
                host_config=host_config,
                network_disabled=self.confined,
            )["Id"]
            state = "created"
        except ImageNotFound:
            why = f"agent image {s.agent_image!r} not found: run `fleet image build`"
            raise RuntimeFailure(why) from None
        except APIError as exc:
            if exc.status_code != 409:
                raise RuntimeFailure(f"creating {name}: {exc.explanation}") from None
            container = self._adoptable(name, launch.agent_id)
            container_id, state = container.id, container.status
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        try:
            if state == "created":
                api.start(container_id)
                state = "running"  # until the engine's events say otherwise
        except APIError as exc:  # "network nosuchnet not found"
            raise RuntimeFailure(f"starting {name}: {exc.explanation}") from None
        except ENGINE_ERRORS as exc:
            raise RuntimeFailure(f"starting {name}: {exc}") from None
        summary = {"Id": container_id, "Labels": labels, "Names": [name], "State": state}
        observed = _observed(summary)
        self._observed.put(observed)
        return observed

    def replace(self, container_id: str, launch: AgentLaunch) -> ObservedAgent:
        """Remove the agent's container and create one with the new spec."""
        self.remove(container_id)
        return self.create(launch)

    def restart(self, container_id: str) -> None:
        """Start the exited container again, as Docker's own restart policy does."""
        try:
            self.client.api.start(container_id)
        except NotFound:
            raise RuntimeFailure(f"{container_id[:12]} is gone") from None
        except APIError as exc:
            raise RuntimeFailure(f"starting {container_id[:12]}: {exc.explanation}") from None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        self._observed.started(container_id)

    def _adoptable(self, name: str, agent_id: str):
        """The existing container called `name`, if it belongs to this agent."""
        try:
            container = self.client.containers.get(name)
        except NotFound:
            raise RuntimeFailure(f"{name} was in conflict but has disappeared; retry") from None
        owner = (container.labels.get(LABEL_INSTANCE), container.labels.get(LABEL_AGENT_ID))
        if owner != (self.settings.instance, agent_id):
            raise RuntimeFailure(f"a container named {name} exists that this fleet does not own")
        return container

    def _label_filter(self) -> list[str]:
        return [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={self.settings.instance}"]

    def list(self) -> list[ObservedAgent]:
        """Every container labelled with this instance, in any state: from the cache the
        events keep while `watch` runs (`runtime.observed`), else from the engine."""
        cached = self._observed.current()
        if cached is not None:
            return cached
        epoch = self._observed.listing()
        try:
            summaries = self.client.api.containers(
                all=True, filters={"label": self._label_filter()}
            )
        except ENGINE_ERRORS as exc:
            self._observed.unlisted()
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        return self._observed.listed((_observed(summary) for summary in summaries), epoch)

    def view(self) -> int | None:
        """The cache's, while the engine's events keep it. (Swarm's services are listed
        every time and never seed the cache: there it is always None.)"""
        return self._observed.view()

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """Stop with a grace period; a missing or stopped container is fine."""
        try:
            self.client.api.stop(container_id, timeout=max(0, round(grace_seconds)))
        except NotFound:
            return
        except ENGINE_ERRORS as exc:
            raise RuntimeFailure(f"stopping {container_id[:12]}: {exc}") from None

    def remove(self, container_id: str) -> None:
        """Force-remove; a missing container or a removal in progress is fine."""
        try:
            self.client.api.remove_container(container_id, force=True)
        except NotFound:
            pass  # gone already
        except APIError as exc:
            if exc.status_code == 409:  # removal already in progress
                return
            raise RuntimeFailure(f"removing {container_id[:12]}: {exc.explanation}") from None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        self._observed.drop(container_id)

    def exit_info(self, container_id: str) -> ExitInfo | None:
        """Exit code, OOM kill and engine error of a stopped container; None for one that
        is gone or being removed (`docker rm -f` kills it first: it vanished, not exited)."""
        try:
            state = self.client.api.inspect_container(container_id)["State"]
        except NotFound:
            return None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        if state.get("Status") == "removing":
            return None
        return ExitInfo(
            state.get("ExitCode"), bool(state.get("OOMKilled")), state.get("Error") or None
        )

    def watch(self, on_event: Callable[[RuntimeEvent], None], stop: threading.Event) -> None:
        """Stream this instance's container events, reconnecting with back-off."""
        delay = 1.0
        while not stop.is_set():
            try:
                self._events = self.client.events(
                    decode=True,
                    filters={"type": "container", "label": self._label_filter(), "event": _WATCHED},
                )
                self._observed.arm()
                delay = 1.0
                for raw in self._events:
                    self._observed.event(raw)
                    on_event(_event(raw))
            except (*ENGINE_ERRORS, OSError) as exc:
                if stop.is_set():
                    return
                log.warning("Docker event stream lost (%s); reconnecting in %.0fs", exc, delay)
            finally:
                self._observed.lost()
            if stop.wait(delay):
                return
            delay = min(delay * 2, _RECONNECT_CAP)

    def logs(self, name: str, tail: int | None, follow: bool) -> Iterator[bytes]:
        """The agent's current container's output (a restart in place keeps it; a new
        container starts afresh)."""
        try:
            container = self.client.containers.get(container_name(self.settings.instance, name))
            return container.logs(stream=True, follow=follow, tail="all" if tail is None else tail)
        except NotFound:
            raise RuntimeFailure(
                f"agent {name} has no container right now (between restarts, or over)"
            ) from None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None

    def close(self) -> None:
        """Stop the event stream and close the engine connection."""
        if self._events is not None:
            self._events.close()
        self.client.close()


def _event(raw: dict) -> RuntimeEvent:
    """A RuntimeEvent from one decoded engine event."""
    attributes = (raw.get("Actor") or {}).get("Attributes") or {}
    code = attributes.get("exitCode")
    return RuntimeEvent(
        action=raw.get("Action") or raw.get("status") or "?",
        container_id=raw.get("id") or (raw.get("Actor") or {}).get("ID", ""),
        agent_id=attributes.get(LABEL_AGENT_ID),
        exit_code=int(code) if code is not None and str(code).lstrip("-").isdigit() else None,
    )

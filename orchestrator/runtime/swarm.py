"""Swarm backend: one single-replica service per agent, spread over the Swarm's nodes.

Swarm owns restarts (policy `on-failure`, its own delay and window). This backend never
restarts a task: it reports the failures it finds in each service's task history
(`ObservedAgent.failed_at`), and the plan counts them, spots a crash loop and alerts.
A hang is Swarm's too: the service's health check fails when the agent's loop has not
touched its liveness file for a heartbeat timeout, and Swarm replaces the task.

Agents live on an overlay network of their own, `fleet-<instance>`: internal (no way
out) and encrypted (IPsec between nodes) unless FLEET_SWARM_ENCRYPTED is off. Besides
agents, only the door is on it (`fleet-<instance>-gateway`, `gateway/door.py`): a service
on the daemon's own node that carries agents' connections to the gateway's Unix socket.
Platform calls take the gateway's relay, as on a confined Docker host.

An agent's token reaches it as a Docker secret, mounted as a file named by
FLEET_AGENT_TOKEN_FILE; it is never in a service's or container's environment. Removing
an agent's service removes its secrets.

A service spec cannot hold `no-new-privileges` (until Docker 27) or an OCI runtime (tasks
run on the node's default, so FLEET_AGENT_OCI_RUNTIME is refused); all else the Docker
backend sets (user, read-only root, tmpfs, capabilities, init, limits, logs) it holds too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import docker
from docker.errors import APIError, NotFound
from docker.types import (
    ContainerSpec,
    DriverConfig,
    EndpointSpec,
    Healthcheck,
    IPAMConfig,
    IPAMPool,
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    RollbackConfig,
    SecretReference,
    ServiceMode,
    TaskTemplate,
    UpdateConfig,
)
from docker.utils import parse_bytes

from orchestrator.runtime import (
    LABEL_AGENT_ID,
    LABEL_INSTANCE,
    LABEL_SPEC_HASH,
    AgentLaunch,
    ExitInfo,
    ObservedAgent,
    RuntimeFailure,
    RuntimeUnavailable,
)
from orchestrator.runtime.docker import AGENT_USER, GATEWAY_MOUNT, DockerRuntime, container_name
from orchestrator.runtime.preflight import ENGINE_ERRORS, engine_info
from orchestrator.settings import Settings

LABEL_ROLE = "fleet.role"
DOOR_PORT = 8080
TOKEN_FILE = "/run/secrets/fleet-agent-token"
ALIVE_FILE = "/tmp/fleet-alive"  # the agent's loop touches it; the health check reads it
_SECOND = 1_000_000_000  # Swarm durations are in nanoseconds
_FAILED = ("failed", "rejected")
_NEVER = datetime.min.replace(tzinfo=UTC)  # a task with no timestamp sorts first
_LOG_DRIVER = DriverConfig("json-file", {"max-size": "1m", "max-file": "3"})
# A tmpfs on the door image's VOLUME: each task had left an anonymous volume Swarm never removes
_DOOR_STATE = Mount("/var/lib/agent-fleet", None, type="tmpfs", tmpfs_size=1 << 20)

log = logging.getLogger("fleet.runtime.swarm")


def _timestamp(text: str | None) -> datetime | None:
    """An engine timestamp (RFC 3339 with nanoseconds) as an aware datetime."""
    if not text or text.startswith("0001-"):
        return None
    whole, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}").replace(tzinfo=UTC)


def _task_time(task: dict) -> datetime:
    return _timestamp((task.get("Status") or {}).get("Timestamp")) or _NEVER


def _observed(service: dict, tasks: list[dict], nodes: dict[str, str]) -> ObservedAgent:
    """An ObservedAgent from a service and its tasks, newest first."""
    labels = service["Spec"].get("Labels") or {}
    update = service.get("UpdateStatus") or {}
    rolled_back = update.get("State", "").startswith("rollback")
    current = next((t for t in tasks if t.get("DesiredState") == "running"), None)
    last = current or (tasks[0] if tasks else None)
    status = (last or {}).get("Status") or {}
    task_state = status.get("State", "pending")
    if current is None and task_state == "complete":
        state = "exited"  # it ended by itself with 0 (retired); on-failure leaves it ended
    elif task_state == "running":
        state = "running"
    else:
        state = "restarting"  # Swarm is placing, starting or replacing its task
    return ObservedAgent(
        container_id=service["ID"],
        agent_id=labels.get(LABEL_AGENT_ID),
        name=service["Spec"]["Name"],
        state=state,
        exit_code=(status.get("ContainerStatus") or {}).get("ExitCode") if last else None,
        spec_hash=labels.get(LABEL_SPEC_HASH, ""),
        started_at=_timestamp(status.get("Timestamp")) if state == "running" else None,
        node=nodes.get((last or {}).get("NodeID", "")),
        rolled_back_at=_timestamp(update.get("StartedAt")) if rolled_back else None,
        waiting=status.get("Err") if current is not None and task_state == "pending" else None,
        failed_at=tuple(
            sorted(_task_time(t) for t in tasks if (t.get("Status") or {}).get("State") in _FAILED)
        ),
    )


class SwarmRuntime(DockerRuntime):
    """Runtime backed by the Swarm whose manager the engine is."""

    name = "swarm"
    restarts_itself = True
    restarts_in_place = False  # Swarm restarts its tasks itself

    def __init__(self, settings: Settings, client: docker.DockerClient | None = None) -> None:
        super().__init__(settings, client)
        self.node_id: str = engine_info(self.client)["Swarm"]["NodeID"]
        self.network = f"fleet-{settings.instance}"
        self.door = f"fleet-{settings.instance}-gateway"
        self._ensure_network()
        self._ensure_door()

    # -- the agents' network and the gateway's door ---------------------------

    def _ensure_network(self) -> None:
        """Create the instance's internal overlay unless it exists."""
        s = self.settings
        if self.client.api.networks(names=[self.network]):
            return
        ipam = None
        if s.swarm_subnet:
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=s.swarm_subnet)])
        try:
            self.client.api.create_network(
                self.network,
                driver="overlay",
                internal=True,
                options={"encrypted": "true"} if s.swarm_encrypted else None,
                ipam=ipam,
                labels=self._instance_labels(),
                check_duplicate=True,
            )
        except APIError as exc:
            if exc.status_code != 409:
                raise RuntimeFailure(
                    f"creating network {self.network}: {exc.explanation}"
                ) from None

    def _ensure_door(self) -> None:
        """Start the gateway's door on this node unless its service exists."""
        s = self.settings
        python = "/opt/fleet/bin/python"
        spec = ContainerSpec(
            s.swarm_door_image,
            command=[python, "-m", "orchestrator.gateway.door"],
            args=["--port", str(DOOR_PORT), "--socket", self._socket_path()],
            user=AGENT_USER,
            labels=self._instance_labels(**{LABEL_ROLE: "door"}),
            mounts=[Mount(GATEWAY_MOUNT, str(s.gateway_dir), "bind", read_only=True), _DOOR_STATE],
            read_only=True,
            init=True,
            cap_drop=["ALL"],
            healthcheck=Healthcheck(test=["NONE"]),  # not the daemon's, from its image
        )
        template = TaskTemplate(
            spec,
            restart_policy=RestartPolicy("any", delay=_SECOND),
            placement=Placement(constraints=[f"node.id=={self.node_id}"]),
            networks=[self.network],
            log_driver=_LOG_DRIVER,
        )
        try:
            self.client.api.create_service(
                template,
                name=self.door,
                labels=self._instance_labels(**{LABEL_ROLE: "door"}),
                endpoint_spec=EndpointSpec(mode="dnsrr"),
            )
        except APIError as exc:
            if exc.status_code != 409:
                raise RuntimeFailure(f"creating the gateway's door: {exc.explanation}") from None

    def _socket_path(self) -> str:
        return f"{GATEWAY_MOUNT}/{self.settings.gateway_socket.name}"

    def spec_hash(self, image: str) -> str:
        """Hash of a service's spec with `image`; one with another hash is updated."""
        s = self.settings
        spec = {
            "image_id": image,
            "encrypted": s.swarm_encrypted,
            "constraints": s.swarm_constraints,
            "restart": [s.swarm_restart_delay_seconds, s.swarm_restart_window_seconds],
            "memory": s.agent_memory_limit,
            "pids": s.agent_pids_limit,
            "cpus": s.agent_cpus,
            "user": AGENT_USER,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    # -- agents ---------------------------------------------------------------

    def _secret(self, launch: AgentLaunch, service: str) -> SecretReference:
        """The agent's token as a secret (one per token: a new generation gets a new one)."""
        digest = hashlib.sha256(launch.token.encode()).hexdigest()[:12]
        name = f"{service}-{digest}"
        found = self.client.api.secrets(filters={"name": [name]})
        match = next((secret for secret in found if secret["Spec"]["Name"] == name), None)
        if match is not None:
            secret_id = match["ID"]
        else:
            labels = self._instance_labels(**{LABEL_AGENT_ID: launch.agent_id})
            try:
                created = self.client.api.create_secret(name, launch.token.encode(), labels)
            except APIError as exc:
                why = exc.explanation
                raise RuntimeFailure(f"creating the secret of {service}: {why}") from None
            secret_id = created["ID"]
        uid, gid = AGENT_USER.split(":")
        return SecretReference(
            secret_id, name, filename=TOKEN_FILE.rsplit("/", 1)[1], uid=uid, gid=gid, mode=0o400
        )

    def _template(self, launch: AgentLaunch, secret: SecretReference) -> TaskTemplate:
        s = self.settings
        environment = launch.environment(token_file=TOKEN_FILE)
        environment["FLEET_GATEWAY_URL"] = f"http://{self.door}:{DOOR_PORT}"
        environment["FLEET_ALIVE_FILE"] = ALIVE_FILE
        timeout = s.heartbeat_timeout_seconds or 30.0
        spec = ContainerSpec(
            launch.image or s.agent_image,
            env=environment,
            user=AGENT_USER,
            labels=self._labels(launch),
            mounts=[Mount("/tmp", None, type="tmpfs", tmpfs_size=16 << 20, tmpfs_mode=0o1777)],
            secrets=[secret],
            read_only=True,
            init=True,
            cap_drop=["ALL"],
            stop_grace_period=int(s.stop_grace_seconds * _SECOND),
            healthcheck=Healthcheck(
                test=[
                    "CMD-SHELL",
                    f"test $(( $(date +%s) - $(stat -c %Y {ALIVE_FILE}) )) -lt {int(timeout)}",
                ],
                interval=int(min(timeout / 3, 30) * _SECOND),
                timeout=5 * _SECOND,
                retries=3,
                start_period=int(timeout * _SECOND),
            ),
        )
        resources = Resources(
            cpu_limit=int(s.agent_cpus * 1e9), mem_limit=parse_bytes(s.agent_memory_limit)
        )
        resources["Limits"]["Pids"] = s.agent_pids_limit
        return TaskTemplate(
            spec,
            resources=resources,
            restart_policy=RestartPolicy(
                "on-failure",
                delay=int(s.swarm_restart_delay_seconds * _SECOND),
                max_attempts=0,
                window=int(s.swarm_restart_window_seconds * _SECOND),
            ),
            placement=Placement(
                constraints=list(s.swarm_constraints), preferences=[("spread", "node.id")]
            ),
            networks=[self.network],
            log_driver=_LOG_DRIVER,
        )

    def create(self, launch: AgentLaunch) -> ObservedAgent:
        """Create the agent's service, adopting one that already has its name."""
        name = container_name(self.settings.instance, launch.name)
        try:
            secret = self._secret(launch, name)
            self.client.api.create_service(
                self._template(launch, secret), name=name, **self._service(launch)
            )
        except APIError as exc:
            if exc.status_code != 409:
                raise RuntimeFailure(f"creating {name}: {exc.explanation}") from None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        return self._adoptable_service(name, launch.agent_id)

    def _service(self, launch: AgentLaunch) -> dict:
        """The service-level spec: one replica, no virtual IP (agents serve nothing), and
        Swarm's own update and rollback: one task stopped before its successor starts (two
        processes must never trade one account), rolled back if it fails a heartbeat timeout."""
        monitor = int((self.settings.heartbeat_timeout_seconds or 30.0) * _SECOND)
        return {
            "labels": self._labels(launch),
            "mode": ServiceMode("replicated", 1),
            "endpoint_spec": EndpointSpec(mode="dnsrr"),
            "update_config": UpdateConfig(
                parallelism=1, order="stop-first", failure_action="rollback", monitor=monitor
            ),
            "rollback_config": RollbackConfig(parallelism=1, order="stop-first"),
        }

    def restart(self, container_id: str) -> None:  # never asked: not `restarts_in_place`
        raise RuntimeFailure("Swarm restarts its tasks itself")

    def replace(self, container_id: str, launch: AgentLaunch) -> ObservedAgent:
        """Update the agent's service in place (same service ID) with the new spec."""
        name = container_name(self.settings.instance, launch.name)
        try:
            version = self.client.api.inspect_service(container_id)["Version"]["Index"]
            secret = self._secret(launch, name)
            self.client.api.update_service(
                container_id,
                version,
                task_template=self._template(launch, secret),
                name=name,
                **self._service(launch),
            )
        except NotFound:
            return self.create(launch)
        except APIError as exc:
            raise RuntimeFailure(f"updating {name}: {exc.explanation}") from None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        return self._adoptable_service(name, launch.agent_id)

    def _adoptable_service(self, name: str, agent_id: str) -> ObservedAgent:
        """The service called `name`, if it belongs to this agent."""
        try:
            service = self.client.api.inspect_service(name)
        except NotFound:
            raise RuntimeFailure(f"{name} was created but has disappeared; retry") from None
        labels = service["Spec"].get("Labels") or {}
        owner = (labels.get(LABEL_INSTANCE), labels.get(LABEL_AGENT_ID))
        if owner != (self.settings.instance, agent_id):
            raise RuntimeFailure(f"a service named {name} exists that this fleet does not own")
        return _observed(service, [], {})

    def list(self) -> list[ObservedAgent]:
        """Every agent service of this instance, with its tasks' state and node."""
        try:
            services = self.client.api.services(filters={"label": self._label_filter()})
            services = [s for s in services if LABEL_AGENT_ID in (s["Spec"].get("Labels") or {})]
            ours = {service["ID"] for service in services}
            tasks: dict[str, list[dict]] = {service_id: [] for service_id in ours}
            for task in self.client.api.tasks():
                if task.get("ServiceID") in ours:
                    tasks[task["ServiceID"]].append(task)
            nodes = {n["ID"]: n["Description"]["Hostname"] for n in self.client.api.nodes()}
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        return [
            _observed(service, sorted(tasks[service["ID"]], key=_task_time, reverse=True), nodes)
            for service in services
        ]

    def stop(self, container_id: str, grace_seconds: float) -> None:
        """Nothing to do: removing a service stops its task with the spec's grace period."""

    def remove(self, container_id: str) -> None:
        """Remove the service and its agent's secrets; a missing one is fine."""
        try:
            service = self.client.api.inspect_service(container_id)
        except NotFound:
            return
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        agent_id = (service["Spec"].get("Labels") or {}).get(LABEL_AGENT_ID)
        try:
            self.client.api.remove_service(container_id)
        except NotFound:
            pass
        except ENGINE_ERRORS as exc:
            raise RuntimeFailure(f"removing {container_id[:12]}: {exc}") from None
        if agent_id:
            self._remove_secrets(agent_id)

    def _remove_secrets(self, agent_id: str) -> None:
        labels = [*self._label_filter(), f"{LABEL_AGENT_ID}={agent_id}"]
        for secret in self.client.api.secrets(filters={"label": labels}):
            try:
                self.client.api.remove_secret(secret["ID"])
            except NotFound:
                continue
            except APIError as exc:
                log.warning("secret %s not removed yet: %s", secret["Spec"]["Name"], exc)

    def exit_info(self, container_id: str) -> ExitInfo | None:
        """How the service's last task ended; None when the service is gone."""
        try:
            tasks = self.client.api.tasks(filters={"service": container_id})
        except NotFound:
            return None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None
        ended = [t for t in tasks if (t.get("Status") or {}).get("State") in (*_FAILED, "complete")]
        if not ended:
            return None
        status = max(ended, key=_task_time)["Status"]
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        return ExitInfo(code, code == 137 and "OOM" in (status.get("Err") or ""), status.get("Err"))

    def logs(self, name: str, tail: int | None, follow: bool) -> Iterator[bytes]:
        """The agent's service output, across its tasks and nodes."""
        service = container_name(self.settings.instance, name)
        lines = "all" if tail is None else tail
        try:
            return self.client.api.service_logs(
                service, stdout=True, stderr=True, follow=follow, tail=lines
            )
        except NotFound:
            raise RuntimeFailure(f"agent {name} has no service right now") from None
        except ENGINE_ERRORS as exc:
            raise RuntimeUnavailable(f"Docker engine not reachable: {exc}") from None

"""Rolling a new agent image over a running fleet, and a broken one back: the steps a
rollout test takes on any container runtime (Docker and Swarm share them)."""

import io
import json

from orchestrator.tools.harness import wait_until


def build(client, base: str, tag: str, broken: bool = False) -> str:
    """An image FROM `base` tagged `tag`, a new ID of its own (broken: it exits at once),
    labelled with its repository for the clean-up; its ID."""
    lines = [f"FROM {base}", f'LABEL fleet.test.image="{tag.split(":")[0]}"']
    if broken:
        lines.append('ENTRYPOINT ["/opt/agent/bin/python", "-c", "raise SystemExit(1)"]')
    source = io.BytesIO("\n".join(lines).encode())
    image, _ = client.images.build(fileobj=source, tag=tag, rm=True, forcerm=True)  # no leftovers
    return image.id


def rollouts(daemon) -> list[dict]:
    result = daemon.fleet("rollout", "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["rollouts"]


def settled(daemon, image_id: str, state: str, timeout: float) -> dict:
    """Wait until the latest rollout to `image_id` is in `state`."""
    short = image_id.removeprefix("sha256:")[:12]

    def latest() -> dict | None:
        found = rollouts(daemon)
        ok = found and found[0]["new_image"] == short and found[0]["state"] == state
        return found[0] if ok else None

    return wait_until(latest, f"the rollout of {short} to be {state}", timeout=timeout)


def replacements(daemon, agent: dict) -> list[str]:
    """When the agent's workload was replaced for a new spec, oldest first."""
    events = daemon.api("GET", f"/v1/agents/{agent['id']}/events").json()
    return [e["at"] for e in events if e["kind"] == "container_replaced"]

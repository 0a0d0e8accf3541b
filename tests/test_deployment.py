"""Deployment: compose.yaml validates, and the orchestrator image (built offline by
`make image`) runs as non-root with a health check and answers /healthz."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.tools.harness import free_port
from tests.conftest import missing

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "agent-fleet-orchestrator:latest"


def test_compose_file_validates_with_the_example_env(tmp_path):
    compose = shutil.which("docker-compose")
    if compose is None:
        missing("docker-compose is not installed (Debian package docker-compose)")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    example = (ROOT / ".env.example").read_text()

    def config(env: str) -> subprocess.CompletedProcess:
        (tmp_path / ".env").write_text(env)
        return subprocess.run(
            [compose, "-f", str(tmp_path / "compose.yaml"), "--profile", "sandbox", "config"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    unset = config(example)  # the database has no default password
    assert unset.returncode != 0 and "set POSTGRES_PASSWORD in .env" in unset.stderr
    result = config(example + "POSTGRES_PASSWORD=a-long-random-one\n")
    assert result.returncode == 0, result.stderr
    for service in ("fleetd:", "postgres:", "sandbox:"):
        assert service in result.stdout
    assert "/var/run/docker.sock:/var/run/docker.sock" in result.stdout
    assert "FLEET_DOCKER_NETWORK: none" in result.stdout  # agents get no network
    assert "listen_addresses=127.0.0.1" in result.stdout


@pytest.mark.docker
def test_the_orchestrator_image_is_non_root_health_checked_and_answers(docker_client):
    from docker.errors import ImageNotFound

    try:
        image = docker_client.images.get(IMAGE)
    except ImageNotFound:
        missing(f"{IMAGE} is not built: `make image`")
    config = image.attrs["Config"]
    assert config["User"] == "10002:10002"
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])

    port = free_port()
    container = docker_client.containers.run(
        IMAGE,
        detach=True,
        network_mode="host",
        environment={
            "FLEET_PORT": str(port),
            "FLEET_HOST": "127.0.0.1",
            "FLEET_RUNTIME": "process",
            "FLEET_INSTANCE": "image-test",
        },
        labels={"fleet.test": "orchestrator-image"},
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                break
            except httpx.HTTPError:
                container.reload()
                assert container.status == "running", container.logs()[-2000:].decode()
                time.sleep(0.5)
        else:
            pytest.fail(f"no /healthz answer: {container.logs()[-2000:].decode()}")
        assert answer["status"] == "ok" and answer["runtime"] == "process"
    finally:
        container.remove(force=True, v=True)  # and its anonymous state volume


def test_the_swarm_stack_file_validates_and_keeps_the_daemon_on_a_manager(tmp_path):
    compose = shutil.which("docker-compose")
    if compose is None:
        missing("docker-compose is not installed (Debian package docker-compose)")

    def config(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [compose, "-f", str(ROOT / "stack.yaml"), "config"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], **env},
        )

    assert "set POSTGRES_PASSWORD" in config().stderr  # no default password
    result = config(POSTGRES_PASSWORD="a-long-random-one")
    assert result.returncode == 0, result.stderr
    assert "FLEET_RUNTIME: swarm" in result.stdout
    assert "node.role == manager" in result.stdout
    assert "replicas: 1" in result.stdout and "ports:" not in result.stdout

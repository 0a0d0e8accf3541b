"""Fixtures for real parts: SQLite and PostgreSQL stores, a Docker engine, a live daemon.

Tests that need Docker or PostgreSQL skip on a developer machine without them, and fail
under `FLEET_REQUIRE_DOCKER=1` (as CI runs them), so a broken CI machine cannot pass.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime

import docker
import psycopg
import pytest
import sqlalchemy as sa
from docker.errors import DockerException, ImageNotFound

from orchestrator.settings import Settings
from orchestrator.state.db import open_store
from orchestrator.state.store import Store
from orchestrator.tools.harness import FLEET, Daemon, Sandbox, free_port, remove_instance

REQUIRED = os.environ.get("FLEET_REQUIRE_DOCKER") == "1"


def cli(*args: str, cwd, **env: str) -> subprocess.CompletedProcess:
    """The `fleet` CLI with only the given FLEET_ settings, in `cwd` (for its .env)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    return subprocess.run(
        [*FLEET, *args], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def missing(what: str) -> None:
    """Skip, or fail when CI requires every real part."""
    if REQUIRED:
        pytest.fail(f"{what} (required by FLEET_REQUIRE_DOCKER=1)")
    pytest.skip(what)


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test."""
    base = os.environ.get("FLEET_TEST_DATABASE_URL")
    if not base:
        missing("no PostgreSQL: set FLEET_TEST_DATABASE_URL (scripts/start-postgres.sh)")
    url = sa.make_url(base)
    name = f"fleet_test_{secrets.token_hex(4)}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    # FORCE ends the test's own connections; an autovacuum worker in the database (not
    # ours to end) makes it refuse for a moment, so try again before giving up on it.
    for attempt in range(10):
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """The same test on a SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleet.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url) -> Store:
    store = open_store(database_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def docker_client():
    """A client of the real Docker engine, with the agent image present."""
    try:
        client = docker.from_env(version="auto")
        client.ping()
    except DockerException as exc:
        missing(f"no Docker engine: {exc}")
    try:
        client.images.get(Settings().agent_image)
    except ImageNotFound:
        missing("no agent image: run `fleet image build` first")
    yield client
    client.close()


@pytest.fixture
def instance() -> str:
    """A fleet instance of this test alone; its containers, then the images a rollout
    test built for it (`own_tag`), are removed afterwards: by then no daemon of the test
    runs and no container holds those images."""
    name = f"t{secrets.token_hex(4)}"
    yield name
    remove_instance(name)
    _remove_rollout_images(name)


def _rollout_tag(instance: str) -> str:
    return f"fleet-rollout-{instance}:latest"


def _remove_rollout_images(instance: str) -> None:
    """The images a rollout test built under its own tag (each takes its intermediate
    layers with it), then the tag."""
    try:
        client = docker.from_env(version="auto")
        client.ping()
    except DockerException:
        return  # no engine: nothing was built
    repository = _rollout_tag(instance).split(":")[0]
    try:
        for image in client.images.list(filters={"label": f"fleet.test.image={repository}"}):
            with contextlib.suppress(ImageNotFound):  # went with one removed before it
                client.images.remove(image.id, force=True)
        with contextlib.suppress(ImageNotFound):
            client.images.remove(_rollout_tag(instance), force=True)
    finally:
        client.close()


@pytest.fixture
def make_daemon(tmp_path, instance):
    """Start `fleet up` daemons on a free port with their own state dir and instance."""
    started: list[Daemon] = []

    def make(runtime: str = "process", **env: str) -> Daemon:
        daemon = Daemon(
            state_dir=tmp_path / "state",
            port=free_port(),
            instance=instance,
            runtime=runtime,
            extra_env=env,
        )
        daemon.start()
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop()


CONTROLLER_KEY = "test-controller-key-0123456789"


def sandbox_config(database_url: str, **overrides):
    from sandbox.app import SandboxConfig

    values = {
        "database_url": database_url,
        "controller_key": CONTROLLER_KEY,
        "secret": b"test-secret-0123456789abcdef0123",
        "market_seed": 7,
    }
    values.update(overrides)
    return SandboxConfig(**values)


@pytest.fixture
def sandbox_url(database_url):
    """A live sandbox platform over HTTP on 127.0.0.1, on SQLite or PostgreSQL."""
    from orchestrator.tools.harness import serve
    from sandbox.app import create_sandbox_app

    with serve(create_sandbox_app(sandbox_config(database_url))) as url:
        yield url


@pytest.fixture
def sandbox_process(tmp_path):
    """`fleet sandbox` in a subprocess on a free port (stoppable: see `harness.Sandbox`)."""
    sandbox = Sandbox(tmp_path / "sandbox-state", free_port(), CONTROLLER_KEY)
    sandbox.state_dir.mkdir(parents=True)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def fleet_sandbox(sandbox_process) -> str:
    """The URL of a running `fleet sandbox`."""
    return sandbox_process.url


@pytest.fixture
def tmux():
    if shutil.which("tmux") is None:
        missing("tmux is not installed (Debian package tmux)")
    session = f"fleet-test-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        return subprocess.run(
            ["tmux", *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout

    yield session, run
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _kernel_has_esp() -> bool:
    """Whether this kernel can hold an IPsec ESP state, which an encrypted overlay needs."""
    state = ["src", "10.231.0.1", "dst", "10.231.0.2", "proto", "esp", "spi", "0x4242"]
    aead = ["mode", "transport", "aead", "rfc4106(gcm(aes))", "0x" + "11" * 20, "128"]
    made = subprocess.run(["ip", "xfrm", "state", "add", *state, *aead], capture_output=True)
    if made.returncode == 0:
        subprocess.run(["ip", "xfrm", "state", "delete", *state], capture_output=True)
    return made.returncode == 0


@pytest.fixture(scope="session")
def swarm():
    """A two-node Swarm on this machine (scripts/two-node-swarm.sh): this engine is the
    manager, `node2` runs in a network namespace. Yields node2's client and whether the
    kernel can encrypt the overlay. Tests that use it share one xdist group."""
    script = "scripts/two-node-swarm.sh"
    try:
        docker.from_env(version="auto").ping()
    except DockerException as exc:
        missing(f"no Docker engine: {exc}")
    held = open("/tmp/fleet-node2.lock", "w")  # noqa: SIM115 (held for the session)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # forming it again here would pull it from under the other
        pytest.fail("another pytest worker holds the two-node Swarm: its tests must share one")
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        missing("a two-node Swarm needs root, iproute2 and nsenter")
    up = subprocess.run(
        ["bash", script, "up", Settings().agent_image], capture_output=True, text=True
    )
    if up.returncode != 0:
        missing(f"no two-node Swarm: {up.stderr.strip()}")
    node2 = docker.DockerClient(base_url=up.stdout.strip().splitlines()[-1], version="auto")
    yield node2, _kernel_has_esp()
    node2.close()
    subprocess.run(["bash", script, "down"], capture_output=True)
    held.close()


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(tmp_path):
    """A page of headless Chromium (Debian's package, driven by Playwright)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        missing("Chromium is not installed (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def market_sandbox(tmp_path):
    """`fleet sandbox` on a fast, newsy market; stop and start it for a platform outage."""
    env = {
        "FLEET_MARKET_TIME_SCALE": "4320",
        "FLEET_MARKET_EVENT_RATE": "0.8",
        "FLEET_MARKET_ANCHOR": datetime.now(UTC).isoformat(),
    }
    sandbox = Sandbox(tmp_path / "sandbox-state", free_port(), CONTROLLER_KEY, env)
    sandbox.state_dir.mkdir(parents=True)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def market(market_sandbox):
    """The daemon's settings for the market sandbox: the same market, and the platform."""
    return {
        **market_sandbox.extra_env,
        "FLEET_PLATFORM_URL": market_sandbox.url,
        "FLEET_CONTROLLER_API_KEY": CONTROLLER_KEY,
    }


@pytest.fixture
def own_tag(docker_client, instance) -> str:
    """The agent image under a tag of this test's own, to rebuild without touching others;
    `instance` removes what was built under it."""
    tag = _rollout_tag(instance)
    docker_client.images.get("agent-fleet-agent:latest").tag(tag)
    return tag


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests (the two-node Swarm's group) first, so the other workers' tests
    run beside them rather than after them."""
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)


def raw_post(
    url: str, path: str, token: str | None, length: int, send: int, answer: bool = True
) -> str:
    """POST declaring `length` bytes but sending only `send`; returns the status line, or
    hangs up at once without one if not `answer`."""
    host, port = url.removeprefix("http://").split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    head += ["Content-Type: application/json"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + b"x" * send)
        return conn.recv(4096).decode(errors="replace").split("\r\n", 1)[0] if answer else ""

"""`fleet image build`: the agent image, built offline from a wheelhouse made on the host.

Containers may not reach a package index (DESIGN §7), so everything the image installs
is put into the build context first. The agent's packages import nothing beyond the
standard library, so the agent image needs only the project's wheel.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, DockerException
from docker.utils import match_tag

from orchestrator.untrusted import quoted

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The packages an agent runs: their source decides whether an image is current.
AGENT_PACKAGES = ("agent_runtime", "platform_client", "personalities", "feeds")
SOURCE_LABEL = "io.agent-fleet.source"


class ImageBuildError(Exception):
    """The image could not be built; the message says what to do."""


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise ImageBuildError(f"pip {args[0]} failed: {' '.join(tail)}")


def source_hash() -> str | None:
    """Hash of the agents' source in this checkout, or None outside a checkout."""
    if not (PROJECT_ROOT / "pyproject.toml").exists():
        return None
    digest = hashlib.sha256()
    for package in AGENT_PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def project_wheel(target: Path) -> None:
    """Put the project's wheel in `target`: all an agent image installs."""
    if not (PROJECT_ROOT / "pyproject.toml").exists():
        raise ImageBuildError("`fleet image build` needs a source checkout of agent-fleet")
    target.mkdir(parents=True, exist_ok=True)
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(target), str(PROJECT_ROOT))


def make_full_wheelhouse(target: Path, python: str) -> None:
    """Fill `target` with the project wheel and binary wheels of all its dependencies,
    pinned as uv.lock pins them, for CPython `python` ("3.11") on x86-64 Linux."""
    project_wheel(target)
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` says where it is
    if uv is None:
        raise ImageBuildError("the orchestrator image needs uv (https://docs.astral.sh/uv)")
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if exported.returncode != 0:
        raise ImageBuildError(f"uv export failed: {exported.stderr.strip()[-200:]}")
    requirements = target / "requirements.txt"
    requirements.write_text(exported.stdout)
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 28, 34)]
    _pip(
        "download",
        "--quiet",
        "--only-binary=:all:",
        f"--python-version={python}",
        "--implementation=cp",
        "--platform=manylinux2014_x86_64",
        *platforms,
        "--dest",
        str(target),
        "-r",
        str(requirements),
    )


def _client(tag: str) -> docker.DockerClient:
    """The engine, once `tag` is known to be a name it takes: before any slow work."""
    if not match_tag(tag):
        raise ImageBuildError(f"{quoted(tag)} is not an image name (name[:tag], lowercase)")
    try:
        client = docker.from_env(version="auto", timeout=600)
        client.ping()
    except DockerException as exc:
        raise ImageBuildError(f"Docker engine not reachable: {exc}") from None
    return client


def _build(client: docker.DockerClient, context: Path, dockerfile: str, tag: str, base: str) -> str:
    shutil.copy(PROJECT_ROOT / dockerfile, context / dockerfile)
    try:
        image, _logs = client.images.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs={"BASE_IMAGE": base},
            labels={SOURCE_LABEL: source_hash() or "unknown"},
            rm=True,
            forcerm=True,
        )
    except BuildError as exc:
        raise ImageBuildError(f"docker build failed: {exc.msg}") from None
    except APIError as exc:
        raise ImageBuildError(f"docker build failed: {exc.explanation}") from None
    except DockerException as exc:  # refused by docker-py before the engine saw it
        raise ImageBuildError(f"docker build failed: {exc}") from None
    return image.id


def build_agent_image(tag: str, base_image: str) -> str:
    """Build the agent image as `tag` on `base_image`; returns the image id."""
    client = _client(tag)
    try:
        with tempfile.TemporaryDirectory(prefix="fleet-image-") as context:
            project_wheel(Path(context) / "wheels")
            return _build(client, Path(context), "Dockerfile.agent", tag, base_image)
    finally:
        client.close()


def build_orchestrator_image(tag: str, base_image: str) -> str:
    """Build the orchestrator image as `tag` on `base_image`; returns the image id."""
    client = _client(tag)
    try:
        try:
            version = client.containers.run(
                base_image,
                ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                remove=True,
                network_mode="none",
            )
        except DockerException as exc:
            raise ImageBuildError(f"cannot run python3 in {base_image}: {exc}") from None
        with tempfile.TemporaryDirectory(prefix="fleet-image-") as context:
            make_full_wheelhouse(Path(context) / "wheels", version.decode().strip())
            return _build(client, Path(context), "Dockerfile.orchestrator", tag, base_image)
    finally:
        client.close()

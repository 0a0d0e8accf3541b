"""`fleet image build`: the agent image, built offline from a wheelhouse made on the host.

Containers may not reach a package index (DESIGN §7), so everything the image installs
is put into the build context first: the project's wheel and the pure-Python wheels of
the agent's dependencies (httpx, tenacity), pinned to the versions this orchestrator runs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import docker
from docker.errors import APIError, BuildError, DockerException

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# What `agent_runtime` and `platform_client` import beyond the standard library.
AGENT_REQUIREMENTS = ("httpx", "tenacity")
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


def make_wheelhouse(target: Path) -> None:
    """Fill `target` with the project wheel and the agent's pinned dependencies."""
    if not (PROJECT_ROOT / "pyproject.toml").exists():
        raise ImageBuildError("`fleet image build` needs a source checkout of agent-fleet")
    target.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={metadata.version(name)}" for name in AGENT_REQUIREMENTS]
    (target / "agent-requirements.txt").write_text("\n".join(pins) + "\n")
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(target), str(PROJECT_ROOT))
    _pip("download", "--quiet", "--only-binary=:all:", "--dest", str(target), *pins)


def build_agent_image(tag: str, base_image: str) -> str:
    """Build the agent image as `tag` on `base_image`; returns the image id."""
    try:
        client = docker.from_env(version="auto", timeout=600)
        client.ping()
    except DockerException as exc:
        raise ImageBuildError(f"Docker engine not reachable: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="fleet-image-") as context:
        root = Path(context)
        make_wheelhouse(root / "wheels")
        shutil.copy(PROJECT_ROOT / "Dockerfile.agent", root / "Dockerfile.agent")
        try:
            image, _logs = client.images.build(
                path=context,
                dockerfile="Dockerfile.agent",
                tag=tag,
                buildargs={"BASE_IMAGE": base_image},
                labels={SOURCE_LABEL: source_hash() or "unknown"},
                rm=True,
                forcerm=True,
            )
        except BuildError as exc:
            raise ImageBuildError(f"docker build failed: {exc.msg}") from None
        except APIError as exc:
            raise ImageBuildError(f"docker build failed: {exc.explanation}") from None
        finally:
            client.close()
    return image.id

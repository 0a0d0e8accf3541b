"""`fleet doctor`: is everything the fleet needs in place? One check per line, with a fix.

Every check reads; none changes anything (the store's migrations are compared, not
applied) and none spends a data provider's quota: quota left comes from the store.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import get_close_matches
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import sqlalchemy as sa
from dotenv import dotenv_values

from orchestrator import keys
from orchestrator.keys import masked_url
from orchestrator.settings import Settings
from orchestrator.state.db import existing_store, schema_head, schema_revision
from orchestrator.state.errors import StoreUnavailable
from orchestrator.state.retention import footprint
from orchestrator.tools.image import SOURCE_LABEL, source_hash
from orchestrator.untrusted import answered

if TYPE_CHECKING:
    import docker

_MIN_FREE_BYTES = 1 << 30
_MAX_SKEW_SECONDS = 5.0
MIN_TOKEN_BITS = 128


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ok, warn or fail, what was seen, and how to fix it."""

    name: str
    status: str
    detail: str
    hint: str = ""


def _daemon(settings: Settings) -> Check:
    url = settings.operator_url
    try:
        response = httpx.get(f"{url}/healthz", timeout=3)
    except httpx.HTTPError:
        return Check("daemon", "warn", f"not answering at {url}", "start it: `fleet up`")
    try:
        answer = response.json()
        status, runtime = answer["status"], answer["runtime"]
    except (ValueError, KeyError, TypeError):
        said = answered(url, response.status_code, response.headers.get("content-type"))
        return Check(
            "daemon",
            "fail",
            f"{said}, not as the fleet daemon does",
            "something else has the daemon's port: set FLEET_PORT (and FLEET_HOST) to the "
            "daemon's, or free the port",
        )
    if status == "degraded":
        problems = "; ".join(answer.get("problems") or ["no reason given"])
        return Check(
            "daemon", "fail", f"degraded: {problems}", "see the daemon's log; free disk space"
        )
    return Check("daemon", "ok", f"up at {url}, {runtime} runtime")


def _store(settings: Settings) -> Check:
    head = schema_head()
    store = existing_store(settings.database_url)
    if store is None:
        return Check("store", "warn", "not created yet", "`fleet up` creates it")
    try:
        revision = schema_revision(store)
        size = footprint(store, datetime.now(UTC)) if revision == head else None
    except StoreUnavailable as exc:
        return Check("store", "fail", str(exc), "check FLEET_DATABASE_URL")
    finally:
        store.engine.dispose()
    where = masked_url(settings.database_url)
    if size is None:
        return Check(
            "store",
            "warn",
            f"{where}: schema at {revision or 'nothing'}, code expects {head}",
            "`fleet up` applies the migrations on start",
        )
    mib = 1 << 20
    return Check(
        "store",
        "ok",
        f"{where}: schema at {head}; {size.size_bytes / mib:.1f} MiB, growing about "
        f"{size.growth_per_day / mib:.2f} MiB a day ({size.rows_last_day} rows in the last "
        f"24 h); history kept {settings.retention_days:g} days",
    )


def _engine_and_image(settings: Settings) -> Iterator[Check]:
    if settings.runtime == "process":
        yield Check("engine", "ok", "process runtime: no container engine needed")
        return
    import docker
    from docker.errors import APIError, DockerException, ImageNotFound

    try:
        client = docker.from_env(version="auto", timeout=5)
        version = client.version()["Version"]
    except DockerException as exc:
        status = "fail" if settings.runtime == "docker" else "warn"
        yield Check(
            "engine",
            status,
            f"Docker not reachable ({type(exc).__name__})",
            "start dockerd (scripts/start-dockerd.sh), or set FLEET_RUNTIME=process",
        )
        return
    yield Check("engine", "ok", f"Docker {version}")
    info = client.info()
    if settings.runtime == "swarm":
        yield _swarm(info.get("Swarm") or {})
        try:
            client.images.get(settings.swarm_door_image)
        except ImageNotFound:
            yield Check(
                "gateway door",
                "fail",
                f"{settings.swarm_door_image} is missing: agents could not reach the gateway",
                "`fleet image build --target orchestrator`",
            )
    else:
        yield _oci_runtime(settings.agent_oci_runtime, info)
    yield from _agent_limits(settings, client, info)
    try:
        image = client.images.get(settings.agent_image)
    except ImageNotFound:
        yield Check("agent image", "fail", f"{settings.agent_image} is missing", "`make image`")
        return
    except APIError as exc:  # a name the engine refuses: `Bad:Img`
        yield Check("agent image", "fail", f"{settings.agent_image!r}: {exc.explanation}")
        return
    finally:
        client.close()
    built = (image.labels or {}).get(SOURCE_LABEL)
    wanted = source_hash()
    if wanted is not None and built != wanted:
        yield Check(
            "agent image",
            "warn",
            f"{settings.agent_image} was built from other agent code",
            "rebuild it with `make image`; running agents are replaced with the new one",
        )
    else:
        yield Check("agent image", "ok", f"{settings.agent_image} ({image.short_id[7:]})")


def _swarm(swarm: dict) -> Check:
    """Whether the engine manages a Swarm, and of how many nodes."""
    if not swarm.get("ControlAvailable"):
        state = swarm.get("LocalNodeState") or "inactive"
        return Check(
            "swarm",
            "fail",
            f"the engine is not a Swarm manager (swarm {state})",
            "`docker swarm init` here, or point DOCKER_HOST at a manager",
        )
    nodes, managers = swarm.get("Nodes", "?"), swarm.get("Managers", "?")
    return Check("swarm", "ok", f"manager of {nodes} nodes ({managers} managers)")


def _oci_runtime(wanted: str, info: dict) -> Check:
    """Which OCI runtime agents' containers get, and whether the engine has it."""
    from orchestrator.runtime.preflight import oci_runtimes

    known = oci_runtimes(info)
    if not wanted:
        default = info.get("DefaultRuntime") or "?"
        return Check("oci runtime", "ok", f"agents run on the engine's default, {default}")
    if wanted in known:
        return Check("oci runtime", "ok", f"agents run on {wanted}")
    return Check(
        "oci runtime",
        "fail",
        f"the engine has no runtime {wanted!r} (it has {', '.join(known)})",
        f"register it (dockerd --add-runtime {wanted}=PATH), or unset FLEET_AGENT_OCI_RUNTIME",
    )


def _agent_limits(settings: Settings, client: docker.DockerClient, info: dict) -> Iterator[Check]:
    """The agents' memory and CPU limits and network, checked as `fleet up` checks them."""
    from orchestrator.runtime import RuntimeFailure
    from orchestrator.runtime.preflight import manages_swarm, refuse_bad_limits

    swarm = settings.runtime == "swarm"
    if swarm and not manages_swarm(info):
        return  # only a manager can list the nodes; the swarm check says what to do
    try:
        refuse_bad_limits(settings, client, info, swarm)
    except RuntimeFailure as exc:
        yield Check("agent limits", "fail", str(exc))
        return
    network = {"none": "no network but the gateway's socket"}.get(
        settings.docker_network, f"network {settings.docker_network}"
    )
    each = f"{settings.agent_memory_limit} of memory and {settings.agent_cpus:g} CPUs each"
    yield Check("agent limits", "ok", f"{each}, {'the Swarm overlay' if swarm else network}")


def _platform(settings: Settings) -> Iterator[Check]:
    if not settings.platform_url:
        yield _the_daemons_platform(settings)
        return
    from platform_client import AuthError, PlatformClient, PlatformError

    key = settings.controller_api_key
    client = PlatformClient(
        settings.platform_url, controller_key=key.get_secret_value() if key else None, deadline=5
    )
    try:
        accounts = client.controller_agents()
    except AuthError:
        yield Check(
            "platform",
            "fail",
            f"{settings.platform_url} refused the controller key",
            "check FLEET_CONTROLLER_API_KEY",
        )
        return
    except PlatformError as exc:
        yield Check("platform", "fail", f"{settings.platform_url}: {exc}", "is the platform up?")
        return
    finally:
        client.close()
    yield Check(
        "platform",
        "ok",
        f"{settings.platform_url}: controller key accepted, {len(accounts)} accounts",
    )


def _the_daemons_platform(settings: Settings) -> Check:
    """No platform in this environment: the running daemon may have one from its own (as
    `fleet demo` gives its daemon the sandbox); its summary says whether it answers."""
    from orchestrator.cli.client import OperatorClient, OperatorError

    client = OperatorClient(settings, timeout=3)
    try:
        reach = client.fleet().get("platform")
    except OperatorError:
        reach = None
    finally:
        client.close()
    if reach is None:
        return Check(
            "platform",
            "warn",
            "none configured: agents get no accounts",
            "set FLEET_PLATFORM_URL and FLEET_CONTROLLER_API_KEY",
        )
    where = "the daemon's, set in its environment and not in this one"
    if reach.get("reachable"):
        return Check("platform", "ok", f"{where}: no call to it has failed")
    return Check(
        "platform",
        "fail",
        f"{where}: unreachable since {str(reach.get('down_since'))[11:19]} UTC, "
        f"{reach.get('failed_calls')} calls failed",
        "is the platform up?",
    )


def _providers(settings: Settings) -> Iterator[Check]:
    from orchestrator.state.usage import UsageLedger

    needs_key = {
        "newsapi": (settings.newsapi_key, "FLEET_NEWSAPI_KEY", settings.newsapi_per_day),
        "alphavantage": (
            settings.alphavantage_key,
            "FLEET_ALPHAVANTAGE_KEY",
            settings.alphavantage_per_day,
        ),
        "alpaca": (settings.alpaca_key_id, "FLEET_ALPACA_KEY_ID", None),
    }
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    for provider in dict.fromkeys([settings.news_provider, settings.quote_provider]):
        if provider == "simulated":
            yield Check(f"data: {provider}", "ok", "the simulated market: no key, no quota")
            continue
        key, variable, per_day = needs_key[provider]
        if key is None:
            yield Check(f"data: {provider}", "fail", "no API key", f"set {variable}")
            continue
        if per_day is None:
            yield Check(f"data: {provider}", "ok", "key set; limited per minute only")
            continue
        store = existing_store(settings.database_url)
        try:
            used = UsageLedger(store).provider_calls(provider, day) if store else 0
        except sa.exc.SQLAlchemyError:
            yield Check(f"data: {provider}", "warn", "key set; quota unknown (see the store)")
            continue
        finally:
            if store is not None:
                store.engine.dispose()
        left = max(per_day - used, 0)
        status = "ok" if left else "warn"
        yield Check(
            f"data: {provider}",
            status,
            f"key set; {left} of {per_day} calls left today",
            "" if left else "the gateway serves cached data until the quota resets at 00:00 UTC",
        )


def _disk(settings: Settings) -> Check:
    path = settings.state_dir if settings.state_dir.exists() else Path.cwd()
    free = shutil.disk_usage(path).free
    detail = f"{free / (1 << 30):.1f} GiB free at {path}"
    if free < _MIN_FREE_BYTES:
        return Check("disk", "warn", detail, "free space: logs and the store grow")
    return Check("disk", "ok", detail)


def _clock(settings: Settings) -> Check:
    """Compare this clock with the Date header of the platform (or the daemon)."""
    url = settings.platform_url or settings.operator_url
    try:
        sent = time.time()
        response = httpx.get(url, timeout=3)
        received = time.time()
        theirs = parsedate_to_datetime(response.headers["date"]).timestamp()
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return Check("clock", "warn", f"nothing to compare with ({url} did not answer)")
    skew = (sent + received) / 2 - theirs
    detail = f"{skew:+.1f}s against {url}"
    if abs(skew) > _MAX_SKEW_SECONDS:
        return Check("clock", "warn", detail, "sync the clock (chrony or systemd-timesyncd)")
    return Check("clock", "ok", detail)


def _operator_token(settings: Settings) -> Check:
    """The operator token's strength: at least 128 bits (the generated one has 256)."""
    if settings.operator_token is not None:
        token, where = settings.operator_token.get_secret_value(), "FLEET_OPERATOR_TOKEN"
    else:
        try:
            token, where = keys.read_operator_token(settings.state_dir), "the generated token"
        except keys.SecretFileError as exc:
            return Check("operator token", "fail", str(exc))
    if token is None:
        return Check("operator token", "ok", "generated on the first `fleet up`")
    bits = keys.token_bits(token)
    if bits < MIN_TOKEN_BITS:
        return Check(
            "operator token",
            "warn",
            f"{where} carries about {bits:.0f} bits; guessable",
            "unset FLEET_OPERATOR_TOKEN to use a generated one, or set one of 22+ random "
            "characters (`openssl rand -hex 16`)",
        )
    return Check("operator token", "ok", f"{where}, about {bits:.0f} bits")


def unknown_settings() -> list[str]:
    """Each FLEET_ name in the environment or `.env` that is no setting, so is ignored, with
    the setting it was likely meant to be: a misspelt setting must not pass unseen."""
    known = {f"FLEET_{name.upper()}" for name in Settings.model_fields}
    env_file = Settings.model_config.get("env_file")
    given = [*os.environ, *(dotenv_values(env_file) if isinstance(env_file, str) else {})]
    unknown = sorted({name.upper() for name in given if name.upper().startswith("FLEET_")} - known)
    meant = {name: get_close_matches(name, known, 1) for name in unknown}
    return [f"{name} (did you mean {m[0]}?)" if m else name for name, m in meant.items()]


def _settings(_settings: Settings) -> Check:
    unknown = unknown_settings()
    if unknown:
        return Check(
            "settings",
            "warn",
            f"not settings, so ignored: {', '.join(unknown)}",
            "rename or remove them (`fleet config` lists every setting)",
        )
    return Check("settings", "ok", "every FLEET_ name given is a setting")


CHECKS: tuple[Callable[[Settings], Check | Iterator[Check]], ...] = (
    _daemon,
    _settings,
    _operator_token,
    _store,
    _engine_and_image,
    _platform,
    _providers,
    _disk,
    _clock,
)


def diagnose(settings: Settings) -> Iterator[Check]:
    """Every check, in order; a check that crashes is reported, not raised."""
    for check in CHECKS:
        try:
            outcome = check(settings)
            yield from [outcome] if isinstance(outcome, Check) else outcome
        except Exception as exc:  # a doctor must finish its round
            name = check.__name__.strip("_").replace("_and_", " and ")
            yield Check(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}")

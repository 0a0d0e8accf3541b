"""The CLI's client for the daemon's operator API.

Errors::

    OperatorError         the daemon answered with an error; message is one line
     └── DaemonDown       nothing answers at the operator URL
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from orchestrator import keys
from orchestrator.settings import Settings
from orchestrator.untrusted import answered, quoted


class OperatorError(Exception):
    """The operator API refused or failed a request; `usage` when what it refused is the
    arguments given (the daemon's 422, an empty reference), for which `fleet` exits 2."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


class DaemonDown(OperatorError):
    """The daemon is not running (or not at the configured address)."""


class OperatorClient:
    """Thin typed calls over the operator API."""

    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.url = settings.operator_url
        self._missing = (
            f"no operator token (no FLEET_OPERATOR_TOKEN, and no operator-token file in "
            f"{settings.state_dir}): set FLEET_STATE_DIR to the daemon's state dir, or "
            "FLEET_OPERATOR_TOKEN to its token"
        )
        try:
            token = (
                settings.operator_token.get_secret_value()
                if settings.operator_token
                else keys.read_operator_token(settings.state_dir) or ""
            )
        except keys.SecretFileError as exc:
            token, self._missing = "", str(exc)
        if not token.isascii():  # only the setting can be: a generated token is
            token, self._missing = "", "FLEET_OPERATOR_TOKEN is not ASCII: no header can carry it"
        if token:
            self._missing = None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._errors():
            response = self._http.request(method, path, **kwargs)
        _raise_for(response)
        try:
            return response.json()
        except ValueError:  # another server on the daemon's port
            raise OperatorError(_stranger(response)) from None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Transport failures, and a call without a token, as one-line OperatorErrors."""
        if self._missing:
            raise OperatorError(self._missing)
        try:
            yield
        except httpx.ConnectError:
            raise DaemonDown(
                f"the fleet daemon is not running at {self.url} (start it with `fleet up`)"
            ) from None
        except httpx.HTTPError as exc:
            raise OperatorError(
                f"talking to the daemon at {self.url}: {type(exc).__name__}"
            ) from None

    def agents(
        self, phases: Iterable[str] = (), strategies: Iterable[str] = (), worst: int | None = None
    ) -> list[dict]:
        """Every agent, optionally only in these phases and with these strategies; with
        `worst`, only that many: those that most need attention, first."""
        params = [("phase", p) for p in phases] + [("strategy", s) for s in strategies]
        if worst is not None:
            params.append(("worst", str(worst)))
        return self._call("GET", "/v1/agents", params=params)

    def agent(self, ref: str) -> dict:
        """One agent by id, name or unique id prefix, with its positions and orders."""
        return self._call("GET", f"/v1/agents/{_path(ref)}")

    def decisions(self, ref: str, limit: int) -> list[dict]:
        """An agent's latest decision records, newest first, each explained."""
        return self._call("GET", f"/v1/agents/{_path(ref)}/decisions", params={"limit": limit})

    def why(self, order: str) -> dict:
        """An order (platform or client order id) and the decision that sent it."""
        return self._call("GET", f"/v1/orders/{_path(order, 'order')}/why")

    def logs(self, ref: str, tail: int | None, follow: bool) -> Iterator[bytes]:
        """An agent's output as it arrives."""
        params: dict[str, Any] = {"follow": "true" if follow else "false"}
        if tail is not None:
            params["tail"] = tail
        with (
            self._errors(),
            self._http.stream(
                "GET", f"/v1/agents/{_path(ref)}/logs", params=params, timeout=None
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _raise_for(response)
            yield from response.iter_bytes()

    def events(self, limit: int = 20) -> list[dict]:
        """The fleet's latest timeline entries, newest first."""
        return self._call("GET", "/v1/events", params={"limit": limit})

    def spawn(self, count: int, idempotency_key: str, **options: object) -> dict:
        """Create `count` agents; the same key makes a retried call harmless."""
        body = {"count": count, "idempotency_key": idempotency_key}
        body.update({k: v for k, v in options.items() if v is not None})
        return self._call("POST", "/v1/agents", json=body)

    def retire(self, ref: str, flatten: bool = False) -> dict:
        """Ask for an agent's retirement, optionally selling its positions first."""
        params = {"flatten": "true"} if flatten else None
        return self._call("DELETE", f"/v1/agents/{_path(ref)}", params=params)

    def scale(self, size: int, **options: object) -> dict:
        """Set the fleet's size."""
        body = {"size": size, **{k: v for k, v in options.items() if v is not None}}
        return self._call("PUT", "/v1/fleet/desired", json=body)

    def pause(self, paused: bool) -> dict:
        """Set or lift the kill switch."""
        return self._call("POST", "/v1/fleet/pause" if paused else "/v1/fleet/resume")

    def fleet(self) -> dict:
        """The fleet summary."""
        return self._call("GET", "/v1/fleet")

    def rollouts(self) -> dict:
        """The latest rollouts of new agent images, newest first."""
        return self._call("GET", "/v1/rollout")

    def rollout(self, command: str) -> dict:
        """Pause, resume or undo the rollout in flight."""
        return self._call("POST", f"/v1/rollout/{command}")

    def schedules(self) -> list[dict]:
        """Every schedule with its next run."""
        return self._call("GET", "/v1/schedules")

    def add_schedule(self, kind: str, **spec: object) -> dict:
        """Add a ramp plan or a daily report (the same one again returns the existing)."""
        body = {k: v for k, v in spec.items() if v is not None}
        return self._call("POST", f"/v1/schedules/{kind}", json=body)

    def remove_schedule(self, schedule_id: str) -> dict:
        """Delete a schedule."""
        return self._call("DELETE", f"/v1/schedules/{_path(schedule_id, 'schedule')}")

    def reports(self, limit: int = 1) -> list[dict]:
        """The latest fleet reports, newest first."""
        return self._call("GET", "/v1/reports", params={"limit": limit})

    def make_report(self) -> dict:
        """A report of the last 24 hours, made now."""
        return self._call("POST", "/v1/reports")

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


_NAMED_BY = {
    "agent": "its name, id or a unique id prefix",
    "order": "its platform or client order id",
    "schedule": "its id (`fleet schedule ls`)",
}


def _path(ref: str, what: str = "agent") -> str:
    """A reference to an agent, order or schedule made safe as one path segment. An empty
    one is no reference, and no agent's name, id or id prefix holds a '/' (orders' and
    schedules' routes take any text)."""
    if not ref.strip():
        raise OperatorError(f"no {what} given: name one by {_NAMED_BY[what]}", usage=True)
    if what == "agent" and "/" in ref:
        raise OperatorError(f"no agent {quoted(ref)}")
    return quote(ref, safe="")


def _raise_for(response: httpx.Response) -> None:
    """An error answer as an OperatorError carrying the daemon's one-line message."""
    if response.status_code < 400:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        raise OperatorError(_stranger(response)) from None
    raise OperatorError(message, usage=response.status_code == 422)


def _stranger(response: httpx.Response) -> str:
    """What to say of an answer that is not the daemon's kind: a failure of the daemon's
    own (5xx), or something else on its port."""
    where = f"{response.url.scheme}://{response.url.netloc.decode()}"
    said = answered(where, response.status_code, response.headers.get("content-type"))
    if response.status_code >= 500:
        return f"{said}: the daemon's log says why"
    return f"{said}, not as the fleet daemon does: is FLEET_PORT (or FLEET_HOST) the daemon's?"

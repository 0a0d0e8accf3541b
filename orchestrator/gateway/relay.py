"""The platform relay: an agent's own trading calls, passed through the gateway.

A confined agent has no network (DESIGN §4.1): the gateway is all it can reach, so its
platform calls come here and go on to the platform unchanged, with the agent's own
platform login. Only the agent's routes of the platform are relayed (log in, submit,
orders, portfolio, subscriptions); a controller route, or anything else, is refused
without reaching the platform, and the relay never adds a key of its own. The agent's
platform token travels in `X-Platform-Authorization` (its `Authorization` is its gateway
token, checked by the `Gatekeeper`) and goes upstream as `Authorization`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import httpx

# (method, path under the platform's root) an agent may send.
RELAYED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile(pattern))
    for method, pattern in (
        ("POST", r"api/auth/login"),
        ("POST", r"api/trading/submit"),
        ("GET", r"api/trading/orders"),
        ("GET", r"api/trading/portfolio"),
        ("GET", r"api/subscriptions"),
        ("POST", r"api/subscriptions"),
        ("DELETE", r"api/subscriptions/[A-Za-z0-9_-]{1,64}"),
    )
)
_PASSED_BACK = ("content-type", "retry-after")


@dataclass(frozen=True)
class Relayed:
    """The platform's answer, as it goes back to the agent."""

    status: int
    body: bytes
    headers: dict[str, str]


def relayed(method: str, path: str) -> bool:
    """Whether an agent may send `method path` to the platform."""
    return any(method == m and pattern.fullmatch(path) for m, pattern in RELAYED)


def _unreachable(reason: str) -> Relayed:
    body = json.dumps({"error": {"code": "platform_unreachable", "message": reason}})
    return Relayed(502, body.encode(), {"content-type": "application/json"})


class PlatformRelay:
    """Passes an agent's allowed platform calls to `base_url` and brings the answer back."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    async def forward(
        self, method: str, path: str, query: str, body: bytes, platform_auth: str | None
    ) -> Relayed:
        """Send one allowed call upstream (check `relayed` first); an unreachable platform
        is a 502 the agent's client retries like any platform outage."""
        headers = {"content-type": "application/json"}
        if platform_auth:
            headers["authorization"] = platform_auth
        url = f"/{path}?{query}" if query else f"/{path}"
        try:
            answer = await self._http.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return _unreachable(f"the platform did not answer ({type(exc).__name__})")
        kept = {name: answer.headers[name] for name in _PASSED_BACK if name in answer.headers}
        return Relayed(answer.status_code, answer.content, kept)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

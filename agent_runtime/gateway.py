"""The agent's client for the orchestrator gateway (DESIGN §4.2).

Errors::

    GatewayError            the gateway could not answer usefully; retry later
     ├── TokenRefused       the gateway rejected this agent's token (401): fatal
     ├── Refused            any other 4xx: the request itself is wrong; do not resend it
     └── RateLimited        too many requests (429): the client keeps quiet as told

After a 429 the client sends nothing until its `Retry-After` has passed: a call before
then fails at once with RateLimited, without touching the network.

The gateway is at an `http://` URL, or at a Unix socket given as `unix:///path` (a
confined agent has no network). The agent's platform calls go through the gateway's
relay (`platform()`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from platform_client import PlatformClient
from platform_client._http import Http, HttpError

_SOCKET_SCHEME = "unix://"


class GatewayError(Exception):
    """The gateway is unreachable or answered with an error."""


class TokenRefused(GatewayError):
    """The gateway does not accept this agent's token."""


class Refused(GatewayError):
    """The gateway refused the request itself (a 4xx other than 401 and 429): sending it
    again would be refused again."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"gateway answered {status}: {message}")
        self.status = status


class RateLimited(GatewayError):
    """The gateway asked this agent to wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited by the gateway: quiet for {retry_after:.0f}s")
        self.retry_after = retry_after


class GatewayClient:
    """Bootstrap and heartbeat calls with the agent's own bearer token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._socket: str | None = None
        if base_url.startswith(_SOCKET_SCHEME):
            self._socket = base_url.removeprefix(_SOCKET_SCHEME)
            base_url = "http://gateway"
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = Http(
            self.base_url,
            unix_socket=self._socket,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )
        self._clock = clock
        self._quiet_until = 0.0

    def _call(
        self, method: str, path: str, json: dict | None = None, params: dict | None = None
    ) -> dict:
        if (wait := self._quiet_until - self._clock()) > 0:
            raise RateLimited(wait)
        if params:
            path = f"{path}?{urlencode(params)}"
        try:
            response = self._http.request(method, path, body=json)
        except HttpError as exc:
            raise GatewayError(f"gateway unreachable: {exc}") from None
        if response.status == 401:
            raise TokenRefused("the gateway refused this agent's token (401)")
        if response.status == 429:
            try:
                wait = max(1.0, float(response.headers.get("retry-after", "1")))
            except ValueError:
                wait = 1.0
            self._quiet_until = self._clock() + wait
            raise RateLimited(wait)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status >= 400:
            try:
                message = answer["error"]["message"]
            except (KeyError, TypeError):
                message = response.reason
            if response.status < 500:
                raise Refused(response.status, message)
            raise GatewayError(f"gateway answered {response.status}: {message}")
        if not isinstance(answer, dict):
            raise GatewayError(f"gateway answered {response.status} without a JSON object")
        return answer

    def bootstrap(self) -> dict:
        """Identity, schedule and platform access of this agent."""
        return self._call("GET", "/v1/agent/bootstrap")

    def heartbeat(self, report: dict) -> dict:
        """Report this cycle; the answer says whether the fleet is paused or we must retire."""
        return self._call("POST", "/v1/agent/heartbeat", json=report)

    def decisions(self, records: list[dict]) -> dict:
        """Hand over a batch of decision records (replays of a batch are harmless)."""
        return self._call("POST", "/v1/agent/decisions", json={"records": records})

    def universe(self) -> dict:
        """Tradable symbols with sector and market-cap bucket."""
        return self._call("GET", "/v1/feed/universe")

    def quotes(self, symbols: list[str]) -> dict:
        """Latest quotes (cached by the gateway)."""
        return self._call("GET", "/v1/feed/quotes", params={"symbols": ",".join(symbols)})

    def news(self, symbols: list[str], since: str) -> dict:
        """Scored news after `since` (ISO time with zone)."""
        return self._call(
            "GET", "/v1/feed/news", params={"symbols": ",".join(symbols), "since": since}
        )

    def assess(self, body: dict) -> dict:
        """The LLM gateway's assessment (or abstention)."""
        return self._call("POST", "/v1/llm/assess", json=body)

    def platform(self, deadline: float) -> PlatformClient:
        """A platform client whose calls pass through the gateway's relay, each retried
        for at most `deadline` seconds: the agent's gateway token goes in `Authorization`,
        its platform token in `X-Platform-Authorization`."""
        return PlatformClient(
            f"{self.base_url}/v1/platform",
            deadline=deadline,
            unix_socket=self._socket,
            headers={"Authorization": f"Bearer {self._token}"},
            token_header="X-Platform-Authorization",
        )

    def close(self) -> None:
        """Close the idle connections."""
        self._http.close()

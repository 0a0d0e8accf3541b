"""The platform HTTP client: typed calls, bounded retries, the same intent on every retry.

Retried: connect errors, timeouts, 429 (after its Retry-After) and 5xx, with jittered
exponential back-off, until a total deadline. Never retried: any other 4xx. A retry
resends the identical request, so the idempotency key or `client_order_id` of one intent
is the same on every attempt and the platform answers it at most once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from platform_client._errors import (
    AuthError,
    BadAnswer,
    PlatformUnavailable,
    RateLimited,
    error_for,
)
from platform_client._http import Http, HttpError, Reply
from platform_client._models import (
    AccessToken,
    Credentials,
    Leader,
    Order,
    Portfolio,
    SocialTrade,
)

_BACKOFF_BASE = 0.25
_BACKOFF_MAX = 8.0


def _retry_after(response: Reply) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _raise_for(response: Reply) -> None:
    if response.status < 400:
        return
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", f"HTTP {response.status} {response.reason}"
    if response.status == 429:
        raise RateLimited(429, code, message, _retry_after(response))
    raise error_for(response.status, code, message)


T = TypeVar("T")


def _document(response: Reply, path: str, read: Callable[[Any], T]) -> T:
    """What `read` makes of the answer's JSON, or BadAnswer if the answer is not the
    contract's document: a proxy's page or another service at the URL is no crash."""
    try:
        return read(response.json())
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        kind = (response.headers.get("content-type") or "no content type")[:60]
        message = f"{path} answered {response.status} with no document of the platform ({kind})"
        raise BadAnswer(response.status, "bad_answer", message) from None


def _listed(data: Any) -> list:
    if not isinstance(data, list):
        raise TypeError("not a list")
    return data


def _mapping(data: Any) -> dict:
    if not isinstance(data, dict):
        raise TypeError("not an object")
    return data


class PlatformClient:
    """One platform base URL; the controller key and the access token are optional.

    `unix_socket` reaches the base URL's server through that socket, and `headers` go on
    every request; `token_header` names where the access token goes (an agent's calls
    pass through the gateway's relay, which takes the agent's own token in
    `Authorization` and the platform's in `X-Platform-Authorization`)."""

    def __init__(
        self,
        base_url: str,
        *,
        controller_key: str | None = None,
        access_token: str | None = None,
        timeout: float = 10.0,
        deadline: float = 30.0,
        max_attempts: int = 8,
        unix_socket: str | None = None,
        headers: Mapping[str, str] | None = None,
        token_header: str = "Authorization",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.controller_key = controller_key
        self.access_token = access_token
        self.deadline = deadline
        self.max_attempts = max_attempts
        self._token_header = token_header
        self._sleep = sleep
        self._http = Http(self.base_url, unix_socket=unix_socket, timeout=timeout, headers=headers)

    # -- plumbing -----------------------------------------------------------

    def _send(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        try:
            response = self._http.request(method, path, headers=headers, body=body)
        except HttpError as exc:
            raise PlatformUnavailable(0, "unreachable", f"{exc} on {path}") from None
        _raise_for(response)
        return response

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        auth: str = "none",
    ) -> Reply:
        headers: dict[str, str] = {}
        if auth == "controller":
            if not self.controller_key:
                raise AuthError(401, "no_controller_key", "no controller API key configured")
            headers["X-Controller-Key"] = self.controller_key
        elif auth == "agent":
            if not self.access_token:
                raise AuthError(401, "missing_token", "not logged in")
            headers[self._token_header] = f"Bearer {self.access_token}"
        started = time.monotonic()
        attempt = 1
        while True:
            try:
                return self._send(method, path, headers, body)
            except (PlatformUnavailable, RateLimited) as exc:
                if isinstance(exc, RateLimited):
                    wait = exc.retry_after
                else:  # jittered exponential back-off
                    wait = random.uniform(0, min(_BACKOFF_MAX, _BACKOFF_BASE * 2**attempt))
                late = time.monotonic() - started + wait >= self.deadline
                if attempt >= self.max_attempts or late:
                    raise
            self._sleep(wait)
            attempt += 1

    # -- controller ---------------------------------------------------------

    def create_agent(
        self,
        idempotency_key: str,
        display_name: str,
        profile: dict[str, Any] | None = None,
        starting_cash: float | None = None,
    ) -> Credentials:
        """Create (or replay the creation of) the agent account for `idempotency_key`."""
        body: dict[str, Any] = {
            "idempotency_key": idempotency_key,
            "display_name": display_name,
            "profile": profile or {},
        }
        if starting_cash is not None:
            body["starting_cash"] = starting_cash
        path = "/api/controller/create-agent"
        response = self._request("POST", path, body=body, auth="controller")
        return _document(response, path, Credentials.from_json)

    def retire_agent(self, user_id: str) -> str:
        """Disable an agent account; returns its status."""
        path = f"/api/controller/agents/{user_id}/retire"
        response = self._request("POST", path, auth="controller")
        return _document(response, path, lambda data: str(data["status"]))

    def controller_agents(self) -> list[dict[str, Any]]:
        """Every account the controller created."""
        path = "/api/controller/agents"
        return _document(self._request("GET", path, auth="controller"), path, _listed)

    # -- agent --------------------------------------------------------------

    def login(self, username: str, password: str) -> AccessToken:
        """Log in and keep the token for the next calls."""
        path = "/api/auth/login"
        body = {"username": username, "password": password}
        token = _document(
            self._request("POST", path, body=body),
            path,
            lambda data: AccessToken(
                str(data["access_token"]), data["token_type"], data["expires_in"]
            ),
        )
        self.access_token = token.access_token
        return token

    def submit_order(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        *,
        qty: float | None = None,
        notional: float | None = None,
        rationale: str | None = None,
    ) -> Order:
        """Submit one order intent; its `client_order_id` makes every retry the same intent."""
        body: dict[str, Any] = {"client_order_id": client_order_id, "symbol": symbol, "side": side}
        for name, value in (("qty", qty), ("notional", notional), ("rationale", rationale)):
            if value is not None:
                body[name] = value
        path = "/api/trading/submit"
        response = self._request("POST", path, body=body, auth="agent")
        replayed = response.status == 200
        return _document(response, path, lambda data: Order.from_json(data, replayed=replayed))

    def orders(self, limit: int = 100) -> list[Order]:
        """Recent orders, newest first."""
        path = f"/api/trading/orders?limit={limit}"
        response = self._request("GET", path, auth="agent")
        return _document(response, path, lambda data: [Order.from_json(i) for i in data])

    def portfolio(self) -> Portfolio:
        """Cash, positions marked to market, equity."""
        path = "/api/trading/portfolio"
        return _document(self._request("GET", path, auth="agent"), path, Portfolio.from_json)

    def follow(self, user_id: str) -> None:
        """Subscribe to another agent."""
        self._request("POST", "/api/subscriptions", body={"user_id": user_id}, auth="agent")

    def unfollow(self, user_id: str) -> None:
        """Unsubscribe from another agent."""
        self._request("DELETE", f"/api/subscriptions/{user_id}", auth="agent")

    def subscriptions(self) -> dict[str, list[str]]:
        """Who this agent follows and who follows it."""
        path = "/api/subscriptions"
        return _document(self._request("GET", path, auth="agent"), path, _mapping)

    def leaderboard(self, limit: int = 100, following: bool = False) -> list[Leader]:
        """Active accounts by return, best first, with followers and the symbols held;
        only the accounts this agent follows if `following`."""
        path = f"/api/social/leaderboard?limit={limit}" + ("&following=true" if following else "")
        response = self._request("GET", path, auth="agent")
        return _document(response, path, lambda d: [Leader.from_json(i) for i in d["accounts"]])

    def social_feed(self, since: datetime, limit: int = 100) -> list[SocialTrade]:
        """Fills after `since` of the accounts this agent follows, newest first."""
        query = urlencode({"since": since.isoformat(), "limit": limit})
        path = f"/api/social/feed?{query}"
        response = self._request("GET", path, auth="agent")
        return _document(response, path, lambda d: [SocialTrade.from_json(i) for i in d["trades"]])

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


class TradingSession:
    """An agent's logged-in client that logs in again when its token expires (401)."""

    def __init__(self, client: PlatformClient, username: str, password: str) -> None:
        self.client = client
        self._username = username
        self._password = password

    def login(self) -> None:
        """Log in now."""
        self.client.login(self._username, self._password)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` on the client, re-logging in once on a refused token."""
        if self.client.access_token is None:
            self.login()
        try:
            return fn(*args, **kwargs)
        except AuthError:
            self.login()
            return fn(*args, **kwargs)

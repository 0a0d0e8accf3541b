"""Bearer tokens and per-token rate limits of the sandbox platform.

Tokens are stateless and signed: `base64(user_id:expiry).signature`, so they survive a
sandbox restart as long as its secret does, and carry their own expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable


class TokenError(Exception):
    """The token is malformed, forged or expired; `code` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks access tokens."""

    def __init__(self, secret: bytes, ttl_seconds: int, clock: Callable[[], float] = time.time):
        self.secret = secret
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, f"token:{payload}".encode(), hashlib.sha256).digest())

    def issue(self, user_id: str) -> str:
        """A token for `user_id` valid for the TTL."""
        payload = _b64(f"{user_id}:{int(self.clock()) + self.ttl_seconds}".encode())
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> str:
        """The user id a valid token stands for."""
        payload, _, signature = token.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            raise TokenError("invalid_token", "the access token is not valid")
        try:
            user_id, expiry = _unb64(payload).decode().rsplit(":", 1)
            expires_at = int(expiry)
        except (ValueError, UnicodeDecodeError):
            raise TokenError("invalid_token", "the access token is not valid") from None
        if expires_at <= self.clock():
            raise TokenError("token_expired", "the access token has expired; log in again")
        return user_id


class RateLimiter:
    """A token bucket per caller: `rate` requests per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, caller: str) -> int:
        """0 if the call may proceed, else the whole seconds to wait before retrying."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[caller] = (tokens - 1, now)
                return 0
            self._buckets[caller] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))

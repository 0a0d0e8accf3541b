"""Typed HTTP client for the trading platform API (DESIGN §4.4), with retries and idempotency.

Used by the orchestrator (controller calls) and by agents (their own login and trades);
it imports only the standard library, so agents stay thin.
"""

from platform_client._client import PlatformClient, TradingSession
from platform_client._errors import (
    AuthError,
    BadAnswer,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
)
from platform_client._models import (
    AccessToken,
    Credentials,
    Leader,
    Order,
    Portfolio,
    Position,
    SocialTrade,
)

__all__ = [
    "AccessToken",
    "AuthError",
    "BadAnswer",
    "Conflict",
    "Credentials",
    "Forbidden",
    "InvalidRequest",
    "Leader",
    "NotFound",
    "Order",
    "PlatformClient",
    "PlatformError",
    "PlatformUnavailable",
    "Portfolio",
    "Position",
    "RateLimited",
    "SocialTrade",
    "TradingSession",
]

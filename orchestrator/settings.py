"""The orchestrator's settings: one pydantic-settings object, built once and passed in.

Nothing below the CLI and the daemon's entry point reads the environment; everything
else receives a `Settings`. Every field is `FLEET_<NAME>` in the environment or `.env`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from feeds.clock import DEFAULT_ANCHOR

_INSTANCE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/agent-fleet`, falling back to `~/.local/state/agent-fleet`."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "agent-fleet"


class Settings(BaseSettings):
    """Effective configuration of one orchestrator instance."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", env_file=".env", extra="ignore")

    state_dir: Path = Field(default_factory=default_state_dir)
    instance: str = ""
    database_url: str = ""

    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    gateway_url: str = ""
    operator_token: SecretStr | None = None

    runtime: Literal["auto", "docker", "process"] = "auto"
    agent_image: str = "agent-fleet-agent:latest"
    docker_network: str = "host"
    agent_memory_limit: str = "96m"
    agent_pids_limit: int = Field(default=64, ge=8)
    agent_cpus: float = Field(default=0.5, gt=0)
    stop_grace_seconds: float = Field(default=10, ge=0)

    agent_cycle_seconds: float = Field(default=10, gt=0)
    risk_max_orders_per_day: int = Field(default=20, ge=0)
    # How often an agent's equity is kept for the dashboard's chart.
    equity_sample_seconds: float = Field(default=300, gt=0)
    reconcile_interval_seconds: float = Field(default=2, gt=0)
    max_concurrent_actions: int = Field(default=8, ge=1)
    # Silence after which a running agent counts as unhealthy; default 3 cycles, at least 30 s.
    heartbeat_timeout_seconds: float | None = Field(default=None, gt=0)
    # Healthy this long and an agent's failures are forgotten (its back-off starts over).
    restart_reset_seconds: float = Field(default=600, gt=0)
    # Consecutive failures that make a crash loop: one alert, restarts go on at the cap.
    crashloop_threshold: int = Field(default=5, ge=1)
    # How long `fleet retire --flatten` keeps trying to sell before it reports what is left.
    flatten_deadline_seconds: float = Field(default=60, ge=0)
    alert_webhook_url: SecretStr | None = None

    platform_url: str = ""
    controller_api_key: SecretStr | None = None
    credentials_key: SecretStr | None = None
    provision_deadline_seconds: float = Field(default=20, gt=0)

    market_seed: int = 42
    market_time_scale: float = Field(default=1.0, gt=0, le=10_000)
    # The wall moment at which market time equals wall time; sped-up demos start it now.
    market_anchor: datetime = DEFAULT_ANCHOR

    news_provider: Literal["simulated", "newsapi", "alphavantage", "alpaca"] = "simulated"
    quote_provider: Literal["simulated", "alphavantage", "alpaca"] = "simulated"
    newsapi_key: SecretStr | None = None
    newsapi_url: str = "https://newsapi.org"
    newsapi_per_day: int = Field(default=100, ge=0)
    alphavantage_key: SecretStr | None = None
    alphavantage_url: str = "https://www.alphavantage.co"
    alphavantage_per_day: int = Field(default=25, ge=0)
    alphavantage_per_minute: int = Field(default=5, ge=0)
    alpaca_key_id: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    alpaca_data_url: str = "https://data.alpaca.markets"
    alpaca_per_minute: int = Field(default=200, ge=0)
    news_ttl_seconds: float = Field(default=60, gt=0)
    quote_ttl_seconds: float = Field(default=10, gt=0)

    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    llm_model: str = "claude-sonnet-4-6"
    # USD per million input and output tokens, by model; keep it in step with the price list.
    llm_prices: dict[str, tuple[float, float]] = {
        "claude-sonnet-4-6": (3.0, 15.0),
        "claude-haiku-4-5": (1.0, 5.0),
        "claude-opus-4-6": (5.0, 25.0),
    }
    llm_daily_budget_usd: float = Field(default=0.5, ge=0)
    llm_timeout_seconds: float = Field(default=20, gt=0)

    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8788, ge=1, le=65535)
    sandbox_database_url: str = ""
    sandbox_token_ttl_seconds: int = Field(default=3600, ge=1)
    sandbox_rate_per_second: float = Field(default=50, gt=0)
    sandbox_rate_burst: int = Field(default=100, ge=1)

    log_format: Literal["text", "json"] = "text"

    @field_validator("instance")
    @classmethod
    def _valid_instance(cls, value: str) -> str:
        if value and not _INSTANCE.match(value):
            raise ValueError(
                "must be 1-31 lowercase letters, digits or '-', starting with a letter or digit"
            )
        return value

    @field_validator("market_anchor")
    @classmethod
    def _aware_anchor(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2026-05-01T09:30:00Z")
        return value

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        self.state_dir = self.state_dir.expanduser().resolve()
        if not self.instance:
            # Two daemons with different state dirs never touch each other's containers.
            self.instance = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:10]
        if not self.database_url:
            self.database_url = f"sqlite:///{self.state_dir / 'fleet.db'}"
        if not self.sandbox_database_url:
            self.sandbox_database_url = f"sqlite:///{self.state_dir / 'sandbox.db'}"
        self.platform_url = self.platform_url.rstrip("/")
        if self.platform_url and self.controller_api_key is None:
            raise ValueError("FLEET_PLATFORM_URL is set but FLEET_CONTROLLER_API_KEY is not")
        if not self.gateway_url:
            self.gateway_url = f"http://127.0.0.1:{self.port}"
        if self.heartbeat_timeout_seconds is None:
            self.heartbeat_timeout_seconds = max(30.0, 3 * self.agent_cycle_seconds)
        return self

    @property
    def operator_url(self) -> str:
        """Where the CLI reaches the daemon's operator API."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def masked_url(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show none of it
        return "********"


def effective(settings: Settings) -> dict[str, object]:
    """Every setting as `FLEET_<NAME>: value`, secrets and passwords in URLs masked."""
    values: dict[str, object] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "********"
        elif name.endswith("database_url"):
            value = masked_url(value)
        elif isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, (Path, datetime)):
            value = str(value)
        values[f"FLEET_{name.upper()}"] = value
    return values

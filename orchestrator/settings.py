"""The orchestrator's settings: one pydantic-settings object, built once and passed in.

Nothing below the CLI and the daemon's entry point reads the environment; everything
else receives a `Settings`. Every field is `FLEET_<NAME>` in the environment or `.env`.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent_runtime.risk import RiskLimits
from feeds.clock import DEFAULT_ANCHOR
from feeds.events import EVENT_RATE_PER_DAY

_INSTANCE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
# How far a sped-up market may run from wall time before the settings are refused.
MAX_MARKET_DRIFT = timedelta(days=5 * 365)


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/agent-fleet`, falling back to `~/.local/state/agent-fleet`."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "agent-fleet"


class Settings(BaseSettings):
    """Effective configuration of one orchestrator instance."""

    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_file=".env", extra="ignore", allow_inf_nan=False
    )

    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where the instance key, operator token, SQLite store and logs live.",
    )
    instance: str = Field(
        default="",
        description="Name of this fleet on the engine (container labels); default: a hash "
        "of the state dir.",
    )
    database_url: str = Field(
        default="",
        description="The store: SQLite in the state dir by default, or a PostgreSQL URL "
        "(postgresql+psycopg://user:password@host/db).",
    )

    host: str = Field(default="127.0.0.1", description="Address the daemon binds.")
    port: int = Field(default=8787, ge=1, le=65535, description="Port of the daemon.")
    gateway_url: str = Field(
        default="",
        description="Where agents reach the daemon; default http://127.0.0.1:FLEET_PORT.",
    )
    operator_token: SecretStr | None = Field(
        default=None,
        description="The operator API token; default: generated into the state dir.",
    )

    runtime: Literal["auto", "docker", "swarm", "process"] = Field(
        default="auto",
        description="Where agents run: docker, swarm (one service per agent on the Swarm "
        "whose manager the engine is), process (no isolation, for development), or auto "
        "(Docker when its engine answers).",
    )
    agent_image: str = Field(
        default="agent-fleet-agent:latest", description="The agents' image (`make image`)."
    )
    docker_network: str = Field(
        default="none",
        description="Network of agent containers: none (no network at all; they reach the "
        "gateway, and the platform through it, on the gateway socket), host, bridge or a name.",
    )
    gateway_dir: Path | None = Field(
        default=None,
        description="A directory of its own for the gateway's Unix socket (gateway.sock), "
        "mounted read-only into agent containers; default: gateway/ in the state dir.",
    )
    swarm_encrypted: bool = Field(
        default=True,
        description="Swarm: encrypt the agents' overlay network (IPsec between nodes). "
        "Only for a kernel without ESP support, and on a private network, turn it off.",
    )
    swarm_subnet: str | None = Field(
        default=None,
        description="Swarm: the agents' overlay subnet (CIDR); default: the engine picks one.",
    )
    swarm_constraints: list[str] = Field(
        default=[],
        description="Swarm: placement constraints for agents, e.g. "
        '["node.labels.fleet==agents"] (a JSON list).',
    )
    swarm_restart_delay_seconds: float = Field(
        default=1, ge=0, description="Swarm: delay before Swarm restarts a failed agent task."
    )
    swarm_restart_window_seconds: float = Field(
        default=60,
        gt=0,
        description="Swarm: how long a restarted task must run before its restart counts as "
        "a success.",
    )
    swarm_door_image: str = Field(
        default="agent-fleet-orchestrator:latest",
        description="Swarm: the image of the gateway's door, the service that carries agents' "
        "calls from the overlay to the gateway socket (`fleet image build --target "
        "orchestrator`).",
    )
    rollout_batch: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="A new agent image rolls out this share of the fleet at a time (at least "
        "one agent); the first batch is the canary.",
    )
    rollout_settle_seconds: float = Field(
        default=20,
        ge=0,
        description="How long a batch's agents must run the new image and heartbeat before "
        "the next batch starts.",
    )
    rollout_deadline_seconds: float = Field(
        default=180,
        gt=0,
        description="A batch not healthy this long after it began rolls the rollout back.",
    )
    agent_memory_limit: str = Field(default="96m", description="Memory limit per agent (≥ 6m).")
    agent_pids_limit: int = Field(default=64, ge=8, description="Process limit per agent.")
    agent_cpus: float = Field(default=0.5, gt=0, description="CPU limit per agent, in cores.")
    agent_oci_runtime: str = Field(
        default="",
        description="Docker: the OCI runtime of agents' containers, by the name the engine "
        "knows it by (crun starts them on less CPU than runc: README, `bench scale`); default: "
        "the engine's default. On Swarm, set the nodes' default runtime instead.",
    )
    stop_grace_seconds: float = Field(
        default=10, ge=0, description="Seconds between SIGTERM and SIGKILL on stop."
    )

    agent_cycle_seconds: float = Field(
        default=10, gt=0, description="Seconds between an agent's heartbeats."
    )
    risk_max_position_fraction: float = Field(
        default=0.15, gt=0, le=1, description="Risk rail: largest position, as a share of equity."
    )
    risk_max_positions: int = Field(
        default=10, ge=1, description="Risk rail: positions an agent may hold at once."
    )
    risk_min_equity: float = Field(
        default=1000, ge=0, description="Risk rail: no new orders below this equity (dollars)."
    )
    risk_max_orders_per_day: int = Field(
        default=20, ge=0, description="Risk rail: orders an agent may submit per market day."
    )
    decision_budget_bytes: int = Field(
        default=16_000_000,
        ge=10_000,
        description="Decision records one agent may have kept per trading day (bytes of JSON); "
        "past it a batch is refused and dropped. Honest agents write about 1 MB on 10 s cycles.",
    )
    retention_days: float = Field(
        default=30,
        gt=0,
        description="History kept whole: older timeline entries and delivered alerts are "
        "removed, older equity samples thinned to one a day (hourly). Orders are kept.",
    )
    equity_sample_seconds: float = Field(
        default=60, gt=0, description="How often an agent's equity is kept for its chart."
    )
    reconcile_interval_seconds: float = Field(
        default=2, gt=0, description="Seconds between reconcile rounds (events wake it sooner)."
    )
    observe_resync_seconds: float = Field(
        default=60, gt=0, description="Docker: list and reconcile all this often (events between)."
    )
    max_concurrent_actions: int = Field(
        default=8, ge=1, description="Container actions at once (and as many account creations)."
    )
    store_batch_seconds: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="How often heartbeats and positions are stored (one batch).",
    )
    heartbeat_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Silence after which a running agent is unhealthy and restarted; "
        "default 3 cycles, at least 30 s.",
    )
    restart_reset_seconds: float = Field(
        default=600,
        gt=0,
        description="Healthy this long and an agent's failures are forgotten (back-off "
        "starts over).",
    )
    crashloop_threshold: int = Field(
        default=5,
        ge=1,
        description="Consecutive failures that make a crash loop (one alert; restarts go "
        "on, capped at 5 min apart).",
    )
    flatten_deadline_seconds: float = Field(
        default=60, ge=0, description="How long `fleet retire --flatten` keeps selling."
    )
    alert_drawdown: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Alert when an agent's equity falls this far below its peak (0.2 = 20 %).",
    )
    alert_rejections: int = Field(
        default=5, ge=1, description="Alert when an agent has this many orders rejected in a row."
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description="Slack-style webhook for alerts (JSON with `text`); without it alerts "
        "are only logged.",
    )

    platform_url: str = Field(
        default="", description="The trading platform; without it agents get no accounts."
    )
    controller_api_key: SecretStr | None = Field(
        default=None, description="The platform's controller key (creates accounts)."
    )
    credentials_key: SecretStr | None = Field(
        default=None,
        description="Fernet key sealing agents' platform credentials; default: derived from "
        "the instance key.",
    )
    provision_deadline_seconds: float = Field(
        default=20, gt=0, description="How long one account creation may retry."
    )

    market_seed: int = Field(default=42, description="Seed of the simulated market.")
    market_time_scale: float = Field(
        default=1.0,
        gt=0,
        le=10_000,
        description="Market seconds per wall second (60 = one market hour a minute).",
    )
    market_event_rate: float = Field(
        default=EVENT_RATE_PER_DAY,
        ge=0,
        le=1,
        description="Chance of a company event per symbol per market day (the demo raises it).",
    )
    market_anchor: datetime = Field(
        default=DEFAULT_ANCHOR,
        description="The wall moment at which market time equals wall time (with a zone).",
    )
    market_hours: Literal["auto", "always", "nyse"] = Field(
        default="auto",
        description="When agents may trade: nyse sessions, always, or auto (always when "
        "news and quotes are both simulated, else nyse).",
    )

    news_provider: Literal["simulated", "newsapi", "alphavantage", "alpaca"] = Field(
        default="simulated", description="Where news comes from."
    )
    quote_provider: Literal["simulated", "alphavantage", "alpaca"] = Field(
        default="simulated", description="Where quotes come from."
    )
    newsapi_key: SecretStr | None = Field(default=None, description="NewsAPI key.")
    newsapi_url: str = Field(default="https://newsapi.org", description="NewsAPI base URL.")
    newsapi_per_day: int = Field(default=100, ge=0, description="NewsAPI calls per day.")
    alphavantage_key: SecretStr | None = Field(default=None, description="Alpha Vantage key.")
    alphavantage_url: str = Field(
        default="https://www.alphavantage.co", description="Alpha Vantage base URL."
    )
    alphavantage_per_day: int = Field(default=25, ge=0, description="Alpha Vantage calls per day.")
    alphavantage_per_minute: int = Field(
        default=5, ge=0, description="Alpha Vantage calls per minute."
    )
    alpaca_key_id: SecretStr | None = Field(default=None, description="Alpaca key id.")
    alpaca_secret_key: SecretStr | None = Field(default=None, description="Alpaca secret key.")
    alpaca_data_url: str = Field(
        default="https://data.alpaca.markets", description="Alpaca market data base URL."
    )
    alpaca_per_minute: int = Field(default=200, ge=0, description="Alpaca calls per minute.")
    news_ttl_seconds: float = Field(
        default=60, gt=0, description="How long fetched news is cached, in market seconds."
    )
    quote_ttl_seconds: float = Field(
        default=10, gt=0, description="How long a fetched quote is cached, in market seconds."
    )

    anthropic_api_key: SecretStr | None = Field(
        default=None, description="Anthropic key for llm_analyst agents (else they abstain)."
    )
    anthropic_base_url: str | None = Field(
        default=None, description="Anthropic API base URL (default: the SDK's)."
    )
    llm_model: str = Field(default="claude-sonnet-4-6", description="The model agents ask.")
    llm_prices: dict[str, tuple[float, float]] = Field(
        default={
            "claude-sonnet-4-6": (3.0, 15.0),
            "claude-haiku-4-5": (1.0, 5.0),
            "claude-opus-4-6": (5.0, 25.0),
        },
        description="USD per million input and output tokens, by model (JSON).",
    )
    llm_daily_budget_usd: float = Field(
        default=0.5, ge=0, description="LLM dollars per agent per UTC day."
    )
    llm_timeout_seconds: float = Field(default=20, gt=0, description="Timeout of one LLM call.")

    sandbox_host: str = Field(default="127.0.0.1", description="Address `fleet sandbox` binds.")
    sandbox_port: int = Field(default=8788, ge=1, le=65535, description="Port of `fleet sandbox`.")
    sandbox_database_url: str = Field(
        default="", description="The sandbox's database; default SQLite in the state dir."
    )
    sandbox_token_ttl_seconds: int = Field(
        default=3600, ge=1, description="Lifetime of the sandbox's access tokens."
    )
    sandbox_rate_per_second: float = Field(
        default=50, gt=0, description="Sandbox requests per second per account."
    )
    sandbox_rate_burst: int = Field(default=100, ge=1, description="Sandbox burst size.")

    log_format: Literal["text", "json"] = Field(
        default="text", description="Daemon log lines: text, or json (one object a line)."
    )
    dashboard_session_seconds: float = Field(
        default=43_200,
        gt=0,
        description="How long a dashboard login lasts (it also ends at "
        "logout and when the daemon restarts).",
    )
    dashboard_actions: bool = Field(
        default=False, description="Let the web dashboard pause, resume and retire (confirmed)."
    )

    @field_validator("*")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:  # `FLEET_X=`, as in a template
        return None if isinstance(value, SecretStr) and not value.get_secret_value() else value

    @field_validator("instance")
    @classmethod
    def _valid_instance(cls, value: str) -> str:
        if value and not _INSTANCE.match(value):
            raise ValueError(
                "must be 1-31 lowercase letters, digits or '-', starting with a letter or digit"
            )
        return value

    @field_validator("platform_url", "gateway_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} has no scheme: write http://… or https://…")
        return value

    @field_validator("database_url", "sandbox_database_url")
    @classmethod
    def _store_url(cls, value: str) -> str:  # never echoed: it may hold a password
        if value and not value.startswith(("sqlite:///", "postgresql+psycopg://")):
            raise ValueError("write sqlite:///PATH or postgresql+psycopg://user:password@host/db")
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
        if self.agent_oci_runtime and self.runtime == "swarm":
            raise ValueError(
                "FLEET_AGENT_OCI_RUNTIME does not reach Swarm services, which run on each "
                "node's default runtime: set that instead (dockerd --default-runtime)"
            )
        if not self.gateway_url:
            self.gateway_url = f"http://127.0.0.1:{self.port}"
        self._check_gateway_dir()
        if self.market_hours == "auto":
            simulated = self.news_provider == self.quote_provider == "simulated"
            self.market_hours = "always" if simulated else "nyse"
        if self.heartbeat_timeout_seconds is None:
            self.heartbeat_timeout_seconds = max(30.0, 3 * self.agent_cycle_seconds)
        self._check_market_time()
        return self

    def _check_gateway_dir(self) -> None:
        """Refuse a gateway directory that holds the state: whatever is in it is mounted
        into every agent container."""
        self.gateway_dir = (self.gateway_dir or self.state_dir / "gateway").absolute()
        if self.gateway_dir in (self.state_dir, *self.state_dir.parents):
            raise ValueError(
                f"FLEET_GATEWAY_DIR={self.gateway_dir} holds the state dir, and it is mounted "
                "into every agent: give the socket a directory of its own"
            )

    @property
    def gateway_socket(self) -> Path:
        """Where the daemon listens for agents without a network."""
        assert self.gateway_dir is not None  # the validator sets it
        return self.gateway_dir / "gateway.sock"

    def _check_market_time(self) -> None:
        """Refuse a speed and anchor that put market time out of reach: the simulated
        market and the calendars are meant for years around now, not millennia."""
        if self.market_time_scale == 1:
            return
        wall = datetime.now(UTC)
        ahead = (wall - self.market_anchor) * self.market_time_scale
        if abs(ahead) > MAX_MARKET_DRIFT:
            years = ahead.days / 365.25
            raise ValueError(
                f"FLEET_MARKET_TIME_SCALE={self.market_time_scale:g} from FLEET_MARKET_ANCHOR="
                f"{self.market_anchor:%Y-%m-%dT%H:%MZ} puts market time {years:,.0f} years "
                "away; anchor the sped-up market near now, e.g. FLEET_MARKET_ANCHOR="
                f"{wall:%Y-%m-%dT%H:%M:%SZ}"
            )

    def risk_limits(self) -> RiskLimits:
        """The risk rails every agent gets at bootstrap (DESIGN §4.6)."""
        return RiskLimits(
            max_position_fraction=self.risk_max_position_fraction,
            max_positions=self.risk_max_positions,
            min_equity=self.risk_min_equity,
            max_orders_per_day=self.risk_max_orders_per_day,
        )

    @property
    def operator_url(self) -> str:
        """Where the CLI reaches the daemon's operator API."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

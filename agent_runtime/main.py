"""The agent's life: read three variables, bootstrap, heartbeat every cycle, stop cleanly.

Exit codes: 0 after SIGTERM/SIGINT or when the orchestrator retires the agent; 2 when the
environment is incomplete; 3 when the gateway refuses the token. An unreachable gateway
is not fatal: the agent keeps its process and tries again next cycle. The token is never
printed.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
from collections.abc import Mapping

from agent_runtime.account import AccountLink
from agent_runtime.contract import Bootstrap, ContractError
from agent_runtime.cycle import Trader, market_clock
from agent_runtime.gateway import GatewayClient, GatewayError, TokenRefused

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_TOKEN_REFUSED = 3
_RETRY_SECONDS = 2.0

log = logging.getLogger("agent")


def _bootstrap(gateway: GatewayClient, stop: threading.Event) -> Bootstrap | None:
    """Bootstrap, retrying while the gateway is unreachable or answers out of contract;
    None if stopped first."""
    while not stop.is_set():
        try:
            return Bootstrap.from_json(gateway.bootstrap())
        except TokenRefused:
            raise
        except (GatewayError, ContractError) as exc:
            log.warning("bootstrap failed, retrying: %s", exc)
            stop.wait(_RETRY_SECONDS)
    return None


def _cycles(gateway: GatewayClient, boot: Bootstrap, stop: threading.Event) -> int:
    """Every tick: trade if a new trading cycle is due, then heartbeat, until stopped or retired."""
    tick, jitter = boot.schedule.cycle_seconds, boot.schedule.jitter_seconds
    account = AccountLink(boot.platform, gateway.platform(deadline=tick)) if boot.platform else None
    trader = Trader(boot, gateway, account) if account else None
    clock = market_clock(boot.clock)
    last_error = account.login() if account else None
    paused = boot.paused  # a restart while paused must not trade first
    try:
        while not stop.is_set():
            # one scale for every beat, so the reported cycle never goes back
            now = clock.now()
            beat = trader.cycle_at(now) if trader else int(now.timestamp() // tick)
            report: dict = {"cycle": beat, "phase": "running"}
            if trader is not None and (cycle := trader.due(now)) is not None:
                result = trader.run(cycle, now, paused)
                last_error = last_error or result.error
                if result.submitted:
                    log.info(
                        "cycle %s: %s orders, %s filled", cycle, result.submitted, result.filled
                    )
            if account is not None:
                state, error = account.report()
                report.update(state)
                if trader is not None:
                    report.update(
                        orders_submitted=trader.submitted_total,
                        orders_filled=trader.filled_total,
                        orders_today=trader.orders_on(clock.now()),
                        catalysts=trader.catalysts.report(),
                    )
                last_error = last_error or error
            try:
                reply = gateway.heartbeat({**report, "last_error": last_error})
                last_error = None
            except TokenRefused:
                raise
            except GatewayError as exc:
                last_error = str(exc)
                log.warning("heartbeat failed: %s", exc)
            else:
                paused = bool(reply.get("paused"))
                if reply.get("retire"):
                    log.info("retired by the orchestrator; exiting")
                    return EXIT_OK
            stop.wait(tick + random.uniform(0, jitter))
    finally:
        if account is not None:
            account.close()
    log.info("stopping on signal")
    return EXIT_OK


def run(gateway: GatewayClient, stop: threading.Event) -> int:
    """Bootstrap, then run cycles; a refused token ends the agent with EXIT_TOKEN_REFUSED."""
    try:
        boot = _bootstrap(gateway, stop)
        if boot is None:
            return EXIT_OK
        log.info(
            "agent %s (%s) bootstrapped, cycle %ss",
            boot.name,
            boot.agent_id,
            boot.schedule.cycle_seconds,
        )
        return _cycles(gateway, boot, stop)
    except TokenRefused as exc:
        log.error("%s; exiting", exc)
        return EXIT_TOKEN_REFUSED


def main(environ: Mapping[str, str] = os.environ, stop: threading.Event | None = None) -> int:
    """Entry point of `python -m agent_runtime`."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per heartbeat
    missing = [
        name
        for name in ("FLEET_AGENT_ID", "FLEET_GATEWAY_URL", "FLEET_AGENT_TOKEN")
        if not environ.get(name)
    ]
    if missing:
        log.error("missing environment: %s", ", ".join(missing))
        return EXIT_CONFIG
    stop = stop or threading.Event()
    gateway = GatewayClient(environ["FLEET_GATEWAY_URL"], environ["FLEET_AGENT_TOKEN"])
    try:
        return run(gateway, stop)
    finally:
        gateway.close()

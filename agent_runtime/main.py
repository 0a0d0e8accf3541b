"""The agent's life: read three variables, bootstrap, heartbeat every cycle, stop cleanly.

The token comes from FLEET_AGENT_TOKEN, or from the file FLEET_AGENT_TOKEN_FILE names (a
Swarm secret). With FLEET_ALIVE_FILE set, every turn of the loop touches that file, so
the runtime's health check can tell a hung agent from a live one.

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
from pathlib import Path

from agent_runtime.account import AccountLink
from agent_runtime.contract import Bootstrap, ContractError
from agent_runtime.cycle import Trader, market_clock
from agent_runtime.gateway import GatewayClient, GatewayError, TokenRefused
from agent_runtime.pulse import Pulse

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_TOKEN_REFUSED = 3
_RETRY_SECONDS = 2.0

log = logging.getLogger("agent")


def _touch(alive: Path | None) -> None:
    """Say the loop still turns (for the runtime's health check)."""
    if alive is not None:
        alive.touch()


def _bootstrap(
    gateway: GatewayClient, stop: threading.Event, alive: Path | None
) -> Bootstrap | None:
    """Bootstrap, retrying while the gateway is unreachable or answers out of contract;
    None if stopped first."""
    while not stop.is_set():
        _touch(alive)
        try:
            return Bootstrap.from_json(gateway.bootstrap())
        except TokenRefused:
            raise
        except (GatewayError, ContractError) as exc:
            log.warning("bootstrap failed, retrying: %s", exc)
            stop.wait(_RETRY_SECONDS)
    return None


def _cycles(
    gateway: GatewayClient, boot: Bootstrap, stop: threading.Event, alive: Path | None
) -> int:
    """Trade whenever a new trading cycle is due, until stopped or retired, while the pulse
    beats with what the loop reports. The first beat goes before the agent logs in: a
    (re)started agent says it is up before it calls the platform, which may take a while."""
    tick, jitter = boot.schedule.cycle_seconds, boot.schedule.jitter_seconds
    account = AccountLink(boot.platform, gateway.platform(deadline=tick)) if boot.platform else None
    trader = Trader(boot, gateway, account) if account else None
    clock = market_clock(boot.clock)
    # one scale for every beat, so the reported cycle never goes back
    cycle_at = trader.cycle_at if trader else lambda now: int(now.timestamp() // tick)
    pulse = Pulse(gateway, lambda: cycle_at(clock.now()), tick, jitter, stop, boot.paused)
    pulse.start()
    try:
        if account is not None:
            pulse.report({}, account.login())
        while not stop.is_set():
            _touch(alive)
            now = clock.now()
            report: dict = {}
            result, error = None, None
            if trader is not None and (cycle := trader.due(now)) is not None:
                result = trader.run(cycle, now, pulse.paused)  # a restart while paused waits
                error = result.error
                if result.submitted:
                    log.info(
                        "cycle %s: %s order%s, %s filled",
                        cycle,
                        result.submitted,
                        "" if result.submitted == 1 else "s",
                        result.filled,
                    )
            if trader is not None:
                error = error or trader.outbox.send(gateway)
            if account is not None:
                state, account_error = account.report(
                    result and result.portfolio,
                    changed=bool(result and result.submitted),
                    market_open=trader is None or trader.calendar.is_open(now),
                )
                report.update(state)
                if trader is not None:
                    report.update(
                        orders_submitted=trader.submitted_total,
                        orders_filled=trader.filled_total,
                        orders_today=trader.orders_on(clock.now()),
                        catalysts=trader.catalysts.report(),
                        open_trades=trader.memory.open_trades(),
                    )
                error = error or account_error
            pulse.report(report, error)
            stop.wait(tick + random.uniform(0, jitter))
    finally:
        pulse.close()
        if trader is not None:
            trader.outbox.send(gateway, force=True)  # what is left, on the way out
        if account is not None:
            account.close()
    if pulse.refused is not None:
        raise pulse.refused
    log.info("retired by the orchestrator; exiting" if pulse.retired else "stopping on signal")
    return EXIT_OK


def run(gateway: GatewayClient, stop: threading.Event, alive: Path | None = None) -> int:
    """Bootstrap, then run cycles; a refused token ends the agent with EXIT_TOKEN_REFUSED."""
    try:
        boot = _bootstrap(gateway, stop, alive)
        if boot is None:
            return EXIT_OK
        log.info(
            "agent %s (%s) bootstrapped, cycle %ss",
            boot.name,
            boot.agent_id,
            boot.schedule.cycle_seconds,
        )
        return _cycles(gateway, boot, stop, alive)
    except TokenRefused as exc:
        log.error("%s; exiting", exc)
        return EXIT_TOKEN_REFUSED


def _token(environ: Mapping[str, str]) -> str | None:
    """The gateway token, from the environment or the file it names; None if neither."""
    if path := environ.get("FLEET_AGENT_TOKEN_FILE"):
        try:
            return Path(path).read_text().strip() or None
        except OSError:
            return None
    return environ.get("FLEET_AGENT_TOKEN") or None


def main(environ: Mapping[str, str] = os.environ, stop: threading.Event | None = None) -> int:
    """Entry point of `python -m agent_runtime`."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    missing = [name for name in ("FLEET_AGENT_ID", "FLEET_GATEWAY_URL") if not environ.get(name)]
    token = _token(environ)
    if token is None:
        missing.append("FLEET_AGENT_TOKEN (or a readable FLEET_AGENT_TOKEN_FILE)")
    if missing:
        log.error("missing environment: %s", ", ".join(missing))
        return EXIT_CONFIG
    stop = stop or threading.Event()
    gateway = GatewayClient(environ["FLEET_GATEWAY_URL"], token)
    alive = Path(environ["FLEET_ALIVE_FILE"]) if environ.get("FLEET_ALIVE_FILE") else None
    try:
        return run(gateway, stop, alive)
    finally:
        gateway.close()

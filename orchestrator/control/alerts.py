"""Alert delivery: the outbox of the store's `alerts` table, sent to the operator's webhook.

Alerts are written in the same transaction as the change that raises them (a crash loop
begins, an agent recovers, the kill switch flips), so each is queued exactly once, and a
daemon restart resumes delivery where it stopped. Delivery is a Slack-compatible JSON POST
(a `text` field plus details) to `FLEET_ALERT_WEBHOOK_URL`, retried with back-off; without a
webhook the alert is only logged. The webhook URL is a secret and never logged. The text
is sent as plain text: nothing in it can become a link, a mention or markup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import httpx

from orchestrator.control.plan import backoff
from orchestrator.logs import about
from orchestrator.state.errors import DatabaseError
from orchestrator.state.health import StoreHealth
from orchestrator.state.store import Store
from orchestrator.state.tables import Alert
from orchestrator.untrusted import visible

log = logging.getLogger("fleet.alerts")

MAX_ATTEMPTS = 8


def slack_plain(text: str) -> str:
    """Text that a Slack-style webhook shows as it is: its three control characters
    escaped (no `<link|…>`, no `<!channel>`), and other control characters made visible."""
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class AlertSender:
    """Delivers queued alerts until cancelled."""

    def __init__(
        self,
        store: Store,
        webhook_url: str | None,
        instance: str,
        now: Callable[[], datetime],
        health: StoreHealth,
        interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.webhook_url = webhook_url
        self.instance = instance
        self.now = now
        self.health = health
        self.interval = interval
        self._http = httpx.AsyncClient(timeout=5.0, transport=transport)

    async def run(self) -> None:
        """Deliver what is due, then look again every interval."""
        try:
            while True:
                try:
                    await self.deliver_due()
                except DatabaseError as exc:
                    self.health.failed("alert delivery", exc)  # logged once per episode
                except Exception:
                    log.exception("alert delivery round failed")
                else:
                    self.health.worked("alert delivery")
                await asyncio.sleep(self.interval)
        finally:
            await self._http.aclose()

    async def deliver_due(self) -> None:
        """One attempt for every alert that is due."""
        for alert in await asyncio.to_thread(self.store.due_alerts, self.now()):
            await self._deliver(alert)

    async def _deliver(self, alert: Alert) -> None:
        assert alert.id is not None
        log.warning("alert [%s] %s", alert.kind, alert.text, extra=about(alert.agent_id))
        if not self.webhook_url:
            await asyncio.to_thread(self.store.record_delivery, alert.id, delivery="logged")
            return
        body = {
            "text": f"[agent-fleet {self.instance}] {slack_plain(alert.text)}",
            "kind": alert.kind,
            "agent_id": alert.agent_id,
            "fleet": self.instance,
            "at": alert.at.isoformat(),
        }
        attempts = alert.attempts + 1
        try:
            response = await self._http.post(self.webhook_url, json=body)
            error = None if response.is_success else f"webhook answered {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"webhook unreachable: {type(exc).__name__}"
        if error is None:
            await asyncio.to_thread(
                self.store.record_delivery, alert.id, delivery="sent", attempts=attempts
            )
            return
        gave_up = attempts >= MAX_ATTEMPTS
        if gave_up:
            log.error("alert %s not delivered after %s attempts: %s", alert.id, attempts, error)
        await asyncio.to_thread(
            self.store.record_delivery,
            alert.id,
            delivery="failed" if gave_up else "pending",
            attempts=attempts,
            next_attempt_at=self.now() + backoff(attempts),
            last_error=error,
        )

"""Provisioning: create an agent's platform account, or say why not and when to retry.

Idempotent like every handler: the account is created under the agent's id as its
idempotency key, and each store write is guarded by the phase the plan saw. Decides
nothing: the retry delay arrives in the action.
"""

from __future__ import annotations

import logging
from datetime import datetime

from orchestrator.control.accounts import Accounts
from orchestrator.control.plan import Provision
from orchestrator.lifecycle import EventKind, Phase
from orchestrator.logs import about
from orchestrator.state.store import Store
from orchestrator.state.tables import Agent
from platform_client import PlatformError, PlatformUnavailable, RateLimited

log = logging.getLogger("fleet.reconciler")


def _record(
    store: Store, now: datetime, agent: Agent, kind: EventKind, message: str, **fields: object
) -> bool:
    """Write one transition of `agent`; False when it went stale meanwhile."""
    return store.transition(agent.id, kind, message, now, **fields) is not None


def provision(store: Store, accounts: Accounts, action: Provision, now: datetime) -> None:
    """Create the agent's account and move it on to starting, or record the retry or the
    refusal."""
    agent = store.get(action.agent_id)
    if agent.phase == Phase.PENDING:
        _record(
            store,
            now,
            agent,
            EventKind.PROVISIONING,
            "creating the platform account",
            phase=Phase.PROVISIONING,
            expect={Phase.PENDING},
        )
    try:
        account = accounts.create(agent.id, agent.name, agent.strategy)
    except (PlatformUnavailable, RateLimited) as exc:
        attempts = agent.provision_attempts + 1
        wait = action.retry_after.total_seconds()
        _record(
            store,
            now,
            agent,
            EventKind.PROVISION_RETRY,
            f"platform unavailable: {exc}; retry {attempts} in {wait:.0f}s",
            expect={Phase.PROVISIONING},
            provision_attempts=attempts,
            next_provision_at=now + action.retry_after,
            reason=f"platform unavailable: {exc}",
        )
        log.warning(
            "agent %s (%s): platform unavailable, provisioning retries in %.0fs",
            agent.name,
            agent.id,
            wait,
            extra=about(agent.id, agent.name),
        )
        return
    except PlatformError as exc:
        why = f"the platform refused the account: {exc}"
        _record(
            store,
            now,
            agent,
            EventKind.FAILED,
            why,
            phase=Phase.FAILED,
            expect={Phase.PROVISIONING},
            reason=why,
        )
        log.error(
            "agent %s (%s) failed: %s",
            agent.name,
            agent.id,
            why,
            extra=about(agent.id, agent.name),
        )
        return
    fields = {
        "platform_user_id": account.user_id,
        "platform_username": account.username,
        "credentials": account.sealed,
        "next_provision_at": None,
        "reason": None,
    }
    message = f"platform account {account.username}"
    created = _record(
        store,
        now,
        agent,
        EventKind.ACCOUNT_CREATED,
        message,
        phase=Phase.STARTING,
        expect={Phase.PROVISIONING},
        **fields,
    )
    if not created:
        # Retired meanwhile: keep the account on record so retirement disables it.
        _record(
            store, now, agent, EventKind.ACCOUNT_CREATED, message, expect={Phase.RETIRING}, **fields
        )
    log.info(
        "agent %s (%s) has platform account %s",
        agent.name,
        agent.id,
        account.username,
        extra=about(agent.id, agent.name),
    )

"""The rollouts table: each rollout of a new agent image, the latest one in force.

Every write is guarded by the state it expects, so a step decided on a stale view, or
run twice, changes nothing; a rollback or a finished rollout queues its alert in the
same transaction.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import col, select

from orchestrator.lifecycle import AlertKind, RolloutState
from orchestrator.state.errors import Conflict
from orchestrator.state.store import Store
from orchestrator.state.tables import Alert, RolloutRecord

LIVE = (RolloutState.ROLLING, RolloutState.PAUSED)


def admitted(record: RolloutRecord) -> list[str]:
    """The agent ids a rollout has admitted to its new image."""
    return json.loads(record.admitted)


def short(image: str) -> str:
    """An image ID as people read it."""
    return image.removeprefix("sha256:")[:12] or "-"


class RolloutBook:
    """Reads and guarded writes of the rollouts table."""

    def __init__(self, store: Store) -> None:
        self.session = store.session

    def latest(self) -> RolloutRecord | None:
        """The rollout in force, if any."""
        with self.session() as s:
            return s.exec(select(RolloutRecord).order_by(col(RolloutRecord.id).desc())).first()

    def history(self, limit: int = 10) -> list[RolloutRecord]:
        """The latest rollouts, newest first."""
        with self.session() as s:
            query = select(RolloutRecord).order_by(col(RolloutRecord.id).desc()).limit(limit)
            return list(s.exec(query))

    def begin(
        self, old_image: str, new_image: str, canary: list[str], now: datetime
    ) -> RolloutRecord:
        """Begin a rollout (one from an image to itself is a finished record of what runs);
        a rollout still in flight is superseded."""
        with self.session() as s:
            latest = s.exec(
                select(RolloutRecord).order_by(col(RolloutRecord.id).desc()).with_for_update()
            ).first()
            if latest is not None and (latest.old_image, latest.new_image) == (
                old_image,
                new_image,
            ):
                return latest  # decided twice
            if latest is not None and latest.state in LIVE:
                latest.finished_at = now
                latest.reason = f"superseded by image {short(new_image)}"
                s.add(latest)
            state = RolloutState.DONE if old_image == new_image else RolloutState.ROLLING
            record = RolloutRecord(
                old_image=old_image,
                new_image=new_image,
                state=state,
                admitted=json.dumps(canary),
                started_at=now,
                step_at=now,
                finished_at=now if state == RolloutState.DONE else None,
            )
            s.add(record)
            s.commit()
            s.refresh(record)
            return record

    def step(
        self,
        rollout_id: int,
        state: RolloutState,
        agents: list[str],
        reason: str | None,
        now: datetime,
    ) -> bool:
        """Admit `agents`, finish or roll back, if the rollout is still rolling; False
        when it was not (paused, undone or superseded meanwhile)."""
        with self.session() as s:
            record = s.get(RolloutRecord, rollout_id, with_for_update=True)
            if record is None or record.state != RolloutState.ROLLING or record.finished_at:
                return False
            what = f"image {short(record.new_image)}"
            record.state = state
            record.admitted = json.dumps(agents)
            record.step_at = now
            if state == RolloutState.ROLLED_BACK:
                record.reason = reason
                text = f"rollout of {what} rolled back: {reason}"
                s.add(Alert(at=now, kind=AlertKind.ROLLOUT_FAILED, text=text))
            if state in (RolloutState.DONE, RolloutState.ROLLED_BACK):
                record.finished_at = now
            if state == RolloutState.DONE:
                text = f"rollout of {what} done: every agent runs it"
                s.add(Alert(at=now, kind=AlertKind.ROLLOUT_DONE, text=text))
            s.add(record)
            s.commit()
            return True

    def command(self, wanted: RolloutState, now: datetime) -> RolloutRecord:
        """The operator's pause (PAUSED), resume (ROLLING) or undo (ROLLED_BACK) of the
        rollout in flight. Conflict, saying why, when there is none to act on."""
        with self.session() as s:
            record = s.exec(
                select(RolloutRecord).order_by(col(RolloutRecord.id).desc()).with_for_update()
            ).first()
            if record is None or record.finished_at is not None:
                raise Conflict(
                    "no rollout is in flight; to go back after one is done, tag the "
                    "previous image as FLEET_AGENT_IMAGE and it rolls out like any other"
                )
            if record.state == wanted:
                return record  # said twice
            record.state = wanted
            record.step_at = now
            if wanted == RolloutState.ROLLED_BACK:
                record.admitted = "[]"
                record.finished_at = now
                record.reason = "undone by the operator"
                text = f"rollout of image {short(record.new_image)} undone by the operator"
                s.add(Alert(at=now, kind=AlertKind.ROLLOUT_FAILED, text=text))
            s.add(record)
            s.commit()
            s.refresh(record)
            return record

"""Supervision: restart counts and back-off, flatten-on-retire, the kill switch, alerts.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("restarts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_restart_at", _tz(), nullable=True))
        batch.add_column(sa.Column("container_started_at", _tz(), nullable=True))
        batch.add_column(sa.Column("healthy_since", _tz(), nullable=True))
        batch.add_column(sa.Column("flatten_deadline", _tz(), nullable=True))
    op.create_table(
        "fleet_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("changed_at", _tz(), nullable=True),
    )
    op.execute("INSERT INTO fleet_state (id, paused) VALUES (1, false)")
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", _tz(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("fleet_state")
    with op.batch_alter_table("agents") as batch:
        for name in (
            "flatten_deadline",
            "healthy_since",
            "container_started_at",
            "next_restart_at",
            "failures",
            "restarts",
        ):
            batch.drop_column(name)

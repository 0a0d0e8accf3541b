"""Schedules (ramp plans, the daily report), the reports they write, and each agent's
equity at the start of the day (for P&L today).

The daily report is scheduled from the start, after the NYSE close; an operator may
remove it or add others with `fleet schedule`.

Revision ID: 0009
Revises: 0008
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("day_start_equity", sa.Float, nullable=True))
        batch.add_column(sa.Column("equity_day", sa.String(10), nullable=True))
    schedules = op.create_table(
        "schedules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_run_at", _tz(), nullable=True),
        sa.Column("last_result", sa.Text, nullable=True),
        sa.Column("done_at", _tz(), nullable=True),
    )
    op.bulk_insert(
        schedules,
        [
            {
                "id": "daily-report",
                "kind": "report",
                "spec": '{"at": "16:30", "timezone": "America/New_York"}',
                "created_at": datetime.now(UTC),
                "runs": 0,
            }
        ],
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(80), nullable=False, unique=True),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reports")
    op.drop_table("schedules")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("equity_day")
        batch.drop_column("day_start_equity")

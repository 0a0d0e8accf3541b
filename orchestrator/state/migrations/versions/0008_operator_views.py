"""What the operator surfaces show: P&L against the first equity, orders today, and an
equity history for the dashboard's chart.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("starting_equity", sa.Float, nullable=True))
        batch.add_column(sa.Column("orders_filled", sa.Integer, nullable=True))
        batch.add_column(sa.Column("orders_today", sa.Integer, nullable=True))
        batch.add_column(sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "equity_samples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("equity", sa.Float, nullable=False),
    )
    op.create_index("ix_equity_samples_agent_at", "equity_samples", ["agent_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_equity_samples_agent_at", "equity_samples")
    op.drop_table("equity_samples")
    with op.batch_alter_table("agents") as batch:
        for name in ("sampled_at", "orders_today", "orders_filled", "starting_equity"):
            batch.drop_column(name)

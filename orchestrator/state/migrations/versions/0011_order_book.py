"""Each agent's orders as the platform answered them through the gateway's relay, and its
open positions: the orchestrator's own record, which outlives the agent's process and its
platform account; and each agent's peak equity and standing alarms (an alert is sent
once per episode).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("qty", sa.Float, nullable=False),
        sa.Column("price", sa.Float, nullable=True),
        sa.Column("rationale", sa.Text, nullable=True),
        sa.Column("reject_reason", sa.Text, nullable=True),
        sa.Column("placed_at", _tz(), nullable=False),
        sa.Column("market_day", sa.String(10), nullable=False),
        sa.Column("recorded_at", _tz(), nullable=False),
        sa.UniqueConstraint("agent_id", "client_order_id", name="uq_orders_agent_client_id"),
    )
    op.create_index("ix_orders_market_day", "orders", ["market_day"])
    op.create_index("ix_orders_agent_placed", "orders", ["agent_id", "placed_at"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("positions", sa.Text, nullable=True))
        batch.add_column(sa.Column("positions_at", _tz(), nullable=True))
        batch.add_column(sa.Column("peak_equity", sa.Float, nullable=True))
        batch.add_column(sa.Column("alarms", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("alarms")
        batch.drop_column("peak_equity")
        batch.drop_column("positions_at")
        batch.drop_column("positions")
    op.drop_index("ix_orders_agent_placed", "orders")
    op.drop_index("ix_orders_market_day", "orders")
    op.drop_table("orders")

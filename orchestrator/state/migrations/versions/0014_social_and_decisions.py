"""Follows between agents, and agents' decision records with the orders they sent.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
        sa.Column("followee_user_id", sa.String(64), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), nullable=False),
        sa.Column("cycle", sa.BigInteger, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strategy", sa.String(40), nullable=False),
        sa.Column("orders", sa.Integer, nullable=False),
        sa.Column("social", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agent_id", "cycle", name="uq_decisions_agent_cycle"),
    )
    op.create_index("ix_decisions_recorded_at", "decisions", ["recorded_at"])
    op.create_table(
        "decision_orders",
        sa.Column("agent_id", sa.String(36), sa.ForeignKey("agents.id"), primary_key=True),
        sa.Column("client_order_id", sa.String(64), primary_key=True),
        sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.id"), nullable=False),
    )
    op.create_index("ix_decision_orders_decision_id", "decision_orders", ["decision_id"])


def downgrade() -> None:
    op.drop_table("decision_orders")
    op.drop_table("decisions")
    op.drop_table("follows")

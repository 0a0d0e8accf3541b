"""Counters an agent reports are 64-bit: a cycle number counted in half-seconds since 1970
already passes 2³¹, which PostgreSQL's `integer` refuses.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COUNTERS = ("last_cycle", "orders_submitted", "orders_filled", "orders_today")


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        for name in COUNTERS:
            batch.alter_column(name, type_=sa.BigInteger, existing_type=sa.Integer)


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        for name in COUNTERS:
            batch.alter_column(name, type_=sa.Integer, existing_type=sa.BigInteger)

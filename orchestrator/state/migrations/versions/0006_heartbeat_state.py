"""What the last heartbeat said about the account: equity, cash, positions, orders.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("equity", sa.Float, nullable=True))
        batch.add_column(sa.Column("cash", sa.Float, nullable=True))
        batch.add_column(sa.Column("open_positions", sa.Integer, nullable=True))
        batch.add_column(sa.Column("orders_submitted", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        for name in ("orders_submitted", "open_positions", "cash", "equity"):
            batch.drop_column(name)

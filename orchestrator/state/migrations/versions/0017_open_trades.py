"""The event that opened each position an agent holds, and its entry price, as it last
reported them: handed back at bootstrap, so that a trade opened before a restart (a
crash, a rollout) and closed after it still teaches the agent about its catalyst.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("open_trades", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("open_trades")

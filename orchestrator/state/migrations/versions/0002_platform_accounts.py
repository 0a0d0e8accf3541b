"""Platform accounts: who the agent is on the platform, its sealed credentials, retries.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("platform_user_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("platform_username", sa.String(64), nullable=True))
        batch.add_column(sa.Column("credentials", sa.Text, nullable=True))
        batch.add_column(sa.Column("provision_attempts", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("next_provision_at", sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        for name in ("next_provision_at", "provision_attempts", "credentials",
                     "platform_username", "platform_user_id"):
            batch.drop_column(name)

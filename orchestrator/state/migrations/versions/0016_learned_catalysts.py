"""What each agent has learned of each kind of news event (its catalyst scores), as it
last reported them: shown to the operator, and handed back at bootstrap so that a
restarted agent goes on learning instead of starting over.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("catalysts", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("catalysts")

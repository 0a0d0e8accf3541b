"""Where each agent's workload runs (a node, on a runtime with several), and the time of the
last failure its runtime restarted by itself and the orchestrator has counted, and of its
last failure of any kind and the spec its workload ran then (a rollout judges an agent by
its failures on the new spec after its batch began).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("node", sa.String(100), nullable=True))
        batch.add_column(sa.Column("failure_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failed_spec", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("failed_spec")
        batch.drop_column("failed_at")
        batch.drop_column("failure_seen_at")
        batch.drop_column("node")

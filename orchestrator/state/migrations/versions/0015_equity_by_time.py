"""Equity samples found by time: the fleet's curves read the last day of them, the daily
report each agent's equity at a moment, and retention what is older than its window.
Without it each read scans every sample the store keeps (a month of 1,000 agents at one
a minute is 43 million).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_equity_samples_at", "equity_samples", ["at"])


def downgrade() -> None:
    op.drop_index("ix_equity_samples_at", "equity_samples")

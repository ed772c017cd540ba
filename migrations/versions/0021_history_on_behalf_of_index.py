"""index of the history entries written on an absent agent's behalf

Revision ID: 0021
Revises: 0020

When an agent comes back from an absence, the home page sums up what their
delegates did on their behalf during it. The entries written on someone's
behalf are few, so the index holds only those.
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    condition = sa.text("on_behalf_of_id IS NOT NULL")
    op.create_index(
        "ix_history_entry_on_behalf_of", "history_entry", ["on_behalf_of_id", "at"],
        postgresql_where=condition, sqlite_where=condition,
    )


def downgrade():
    op.drop_index("ix_history_entry_on_behalf_of", table_name="history_entry")

"""statistics indexes

Revision ID: 0010
Revises: 0009

Indexes of the statistics dashboard. Each holds the columns that one grouped
query of app/statistics/operations.py reads, so that the database reads the
index and not the mail rows: mail received in a period (by arrival date),
mail closed in a period (by closing time), open mail (by status), and the
history entries of the assigning actions (by event).
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_mail_statistics_arrival", "mail",
        ["arrival_date", "handling_department_id", "channel", "mail_type", "category", "confidential",
         "assignee_id", "created_at"],
    )
    op.create_index(
        "ix_mail_statistics_closed", "mail",
        ["closed_at", "arrival_date", "due_date", "handling_department_id", "mail_type", "category", "channel",
         "confidential"],
    )
    op.create_index(
        "ix_mail_statistics_open", "mail",
        ["status", "arrival_date", "handling_department_id", "assignee_id", "due_date", "mail_type", "category",
         "channel", "confidential"],
    )
    op.create_index("ix_history_entry_event", "history_entry", ["event", "mail_id"])


def downgrade():
    op.drop_index("ix_history_entry_event", table_name="history_entry")
    op.drop_index("ix_mail_statistics_open", table_name="mail")
    op.drop_index("ix_mail_statistics_closed", table_name="mail")
    op.drop_index("ix_mail_statistics_arrival", table_name="mail")

"""index of mail awaiting its acknowledgement without the state column, PostgreSQL only

Revision ID: 0015
Revises: 0014

ix_mail_acknowledgement_pending began with acknowledgement_pending, which its
predicate makes the same on every entry. PostgreSQL drops the basket's
``acknowledgement_pending = true`` as implied by the predicate, so the first
column had no condition, and PostgreSQL 15 then tested the statuses on every
entry of the department instead of reading their ranges. At 1,000,000 mails,
the count of "AR à envoyer" for one department read 258,506 entries to keep
51,794 (88 ms), and the menu's count capped at 1,000 took 115 ms. Without the
column: 11 ms and 0.5 ms.

SQLite keeps the column: it has no statistics, and the equality on it makes
SQLite prefer this index to the indexes of every mail.
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

NAME = "ix_mail_acknowledgement_pending"
COLUMNS = ["handling_department_id", "status", "confidential", "arrival_date", "id",
           "created_by_id", "assignee_id", "initiating_department_id"]


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(NAME, table_name="mail")
    op.create_index(NAME, "mail", COLUMNS, postgresql_where=sa.text("acknowledgement_pending"))


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(NAME, table_name="mail")
    op.create_index(NAME, "mail", ["acknowledgement_pending", *COLUMNS], postgresql_where=sa.text("acknowledgement_pending"))

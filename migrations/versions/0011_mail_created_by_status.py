"""status in the index of the mail a user registered

Revision ID: 0011
Revises: 0010

ix_mail_created_by becomes (created_by_id, arrival_date, id, status). The
"registered by me" basket filters on status and sorts by arrival date, so
its count and the ids of its page are read from the index alone instead of
one table row per mail the user registered.
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_mail_created_by", table_name="mail")
    op.create_index("ix_mail_created_by", "mail", ["created_by_id", "arrival_date", "id", "status"])


def downgrade():
    op.drop_index("ix_mail_created_by", table_name="mail")
    op.create_index("ix_mail_created_by", "mail", ["created_by_id", "arrival_date"])

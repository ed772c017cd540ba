"""the address an e-mail's recipient answers to: the handling department's for e-mails to correspondents

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_message") as batch:
        batch.add_column(sa.Column("reply_to", sa.String(320), nullable=True))


def downgrade():
    with op.batch_alter_table("email_message") as batch:
        batch.drop_column("reply_to")

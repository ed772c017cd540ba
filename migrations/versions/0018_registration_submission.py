"""one-time tokens of registration forms, so that a form sent twice registers one mail

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "registration_submission",
        sa.Column("token", sa.String(32), primary_key=True),
        sa.Column("mail_id", sa.Integer(), sa.ForeignKey("mail.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("registration_submission")

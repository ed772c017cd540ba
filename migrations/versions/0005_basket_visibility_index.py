"""basket visibility index

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_mail_basket_visibility", "mail", ["handling_department_id", "status", "confidential", "due_date"]
    )


def downgrade():
    op.drop_index("ix_mail_basket_visibility", table_name="mail")

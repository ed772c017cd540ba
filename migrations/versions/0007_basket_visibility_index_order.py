"""basket visibility index order

Revision ID: 0007
Revises: 0006

ix_mail_basket_visibility leads with confidential. With the department and
status first, SQLite chose it for the "À traiter" page too, where due_date
is not in order, and sorted every open mail of the department.
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

RULE_COLUMNS = ["created_by_id", "assignee_id", "initiating_department_id"]


def upgrade():
    op.drop_index("ix_mail_basket_visibility", table_name="mail")
    op.create_index(
        "ix_mail_basket_visibility", "mail",
        ["confidential", "handling_department_id", "status", "due_date", *RULE_COLUMNS],
    )


def downgrade():
    op.drop_index("ix_mail_basket_visibility", table_name="mail")
    op.create_index(
        "ix_mail_basket_visibility", "mail",
        ["handling_department_id", "status", "confidential", "due_date", *RULE_COLUMNS],
    )

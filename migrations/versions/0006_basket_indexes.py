"""basket indexes

Revision ID: 0006
Revises: 0005

The basket indexes gain the columns the visibility rule tests, so that
basket pages and counts are read from an index alone; ix_mail_basket_closed
serves the baskets of recently closed mail.
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

RULE_COLUMNS = ["created_by_id", "assignee_id", "initiating_department_id"]


def upgrade():
    op.drop_index("ix_mail_basket_visibility", table_name="mail")
    op.drop_index("ix_mail_basket", table_name="mail")
    op.create_index(
        "ix_mail_basket", "mail", ["handling_department_id", "status", "due_date", "id", "confidential", *RULE_COLUMNS]
    )
    op.create_index(
        "ix_mail_basket_closed", "mail",
        ["handling_department_id", "status", "closed_at", "id", "confidential", *RULE_COLUMNS],
    )
    op.create_index(
        "ix_mail_basket_visibility", "mail",
        ["handling_department_id", "status", "confidential", "due_date", *RULE_COLUMNS],
    )


def downgrade():
    op.drop_index("ix_mail_basket_visibility", table_name="mail")
    op.drop_index("ix_mail_basket_closed", table_name="mail")
    op.drop_index("ix_mail_basket", table_name="mail")
    op.create_index("ix_mail_basket", "mail", ["handling_department_id", "status", "due_date", "id"])
    op.create_index(
        "ix_mail_basket_visibility", "mail", ["handling_department_id", "status", "confidential", "due_date"]
    )

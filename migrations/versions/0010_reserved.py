"""reserved slot

Revision ID: 0010
Revises: 0009

Reserved for work in progress; changes nothing yet.
"""

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

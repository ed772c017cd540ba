"""reserved slot

Revision ID: 0012
Revises: 0011

Reserved for work in progress; changes nothing yet.
"""

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

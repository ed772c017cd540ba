"""reserved slot

Revision ID: 0011
Revises: 0010

Reserved for work in progress; changes nothing yet.
"""

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

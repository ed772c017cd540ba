"""reserved slot

Revision ID: 0009
Revises: 0008

Reserved for work in progress; changes nothing yet.
"""

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

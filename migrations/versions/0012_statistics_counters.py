"""statistics counters

Revision ID: 0012
Revises: 0011

Tables of the pre-aggregated statistics (app/statistics/models.py):
statistics_count (exact counts per day and per month, by department, mail
type, category, channel and confidentiality), mail_statistics (what each
mail added to them) and statistics_state (present while the counters match
the mail rows). On an empty register the counters are complete at once, so
the state row is written here. A register that already holds mail gets no
state row: the dashboard reads the mail rows until `flask statistics
rebuild` fills the counters.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "statistics_count",
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("granularity", sa.String(1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("mail_type", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("flag", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("measure", "granularity", "day", "department_id", "mail_type", "category", "channel",
                                "confidential", "assignee_id", "value", "flag", name="pk_statistics_count"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "mail_statistics",
        sa.Column("mail_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("arrival_date", sa.Date(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("mail_type", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("due_date", sa.Date()),
        sa.Column("closed_on", sa.Date()),
        sa.Column("processing_days", sa.Integer()),
        sa.Column("first_assignment_days", sa.Integer()),
        sa.Column("acknowledgement", sa.Integer()),
        sa.Column("attachments", sa.Integer(), nullable=False),
    )
    state = op.create_table(
        "statistics_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("fingerprint", sa.JSON(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
    )
    has_mail = op.get_bind().execute(sa.text("SELECT 1 FROM mail LIMIT 1")).first() is not None
    if not has_mail:
        # An empty fingerprint: the first flush that counts a mail records the configuration.
        op.execute(state.insert().values(id=1, fingerprint={}, built_at=sa.func.current_timestamp()))


def downgrade():
    op.drop_table("statistics_state")
    op.drop_table("mail_statistics")
    op.drop_table("statistics_count")

"""reminders and notifications

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table('missing_documents_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('documents', JSON_DOCUMENT, nullable=False),
    sa.Column('received_on', sa.Date(), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('received_recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['ab_user.id']),
    sa.ForeignKeyConstraint(['received_recorded_by_id'], ['ab_user.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_missing_documents_request_mail_id', 'missing_documents_request', ['mail_id'])

    op.create_table('reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('plan_id', sa.String(length=64), nullable=True),
    sa.Column('step_index', sa.Integer(), nullable=True),
    sa.Column('occurrence', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('remind_on', sa.Date(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipient_roles', JSON_DOCUMENT, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', JSON_DOCUMENT, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_reminder_mail_id', 'reminder', ['mail_id'])
    op.create_index(
        'ix_reminder_pending_due', 'reminder', ['due_at'],
        sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"),
    )

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('params', JSON_DOCUMENT, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('email_state', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_id'], ['ab_user.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_notification_mail_id', 'notification', ['mail_id'])
    op.create_index('ix_notification_user_unread', 'notification', ['user_id', 'read_at', 'id'])
    op.create_index(
        'ix_notification_digest', 'notification', ['user_id'],
        sqlite_where=sa.text("email_state = 'digest'"), postgresql_where=sa.text("email_state = 'digest'"),
    )

    op.create_table('email_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    op.create_index('ix_email_message_user_id', 'email_message', ['user_id'])
    op.create_index(
        'ix_email_message_unsent', 'email_message', ['next_attempt_at'],
        sqlite_where=sa.text("state IN ('pending', 'sending')"),
        postgresql_where=sa.text("state IN ('pending', 'sending')"),
    )

    op.create_table('user_preference',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('email_mode', sa.String(length=16), nullable=False),
    sa.Column('muted_events', JSON_DOCUMENT, nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )

    op.create_table('scheduler_lease',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )

    op.create_table('scheduler_job',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_outcome', sa.String(length=16), nullable=True),
    sa.Column('last_summary', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_holder', sa.String(length=255), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('total_runs', sa.Integer(), nullable=False),
    sa.Column('total_failures', sa.Integer(), nullable=False),
    sa.Column('late_runs', sa.Integer(), nullable=False),
    sa.Column('last_late_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_late_by_seconds', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade():
    op.drop_table('scheduler_job')
    op.drop_table('scheduler_lease')
    op.drop_table('user_preference')
    op.drop_index('ix_email_message_unsent', table_name='email_message')
    op.drop_index('ix_email_message_user_id', table_name='email_message')
    op.drop_table('email_message')
    op.drop_index('ix_notification_digest', table_name='notification')
    op.drop_index('ix_notification_user_unread', table_name='notification')
    op.drop_index('ix_notification_mail_id', table_name='notification')
    op.drop_table('notification')
    op.drop_index('ix_reminder_pending_due', table_name='reminder')
    op.drop_index('ix_reminder_mail_id', table_name='reminder')
    op.drop_table('reminder')
    op.drop_index('ix_missing_documents_request_mail_id', table_name='missing_documents_request')
    op.drop_table('missing_documents_request')

"""routing and distribution lists

Distribution lists (copies and opinion requests), read marks of copies,
absences with their delegate, and the closing time of a mail.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_mail_closed_at'), ['closed_at'], unique=False)

    op.create_table('distribution_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(user_id IS NULL) <> (department_id IS NULL)', name='ck_distribution_entry_one_target'),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id']),
    sa.ForeignKeyConstraint(['department_id'], ['department.id']),
    sa.ForeignKeyConstraint(['requested_by_id'], ['ab_user.id']),
    sa.ForeignKeyConstraint(['answered_by_id'], ['ab_user.id']),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('distribution_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_distribution_entry_mail_id'), ['mail_id'], unique=False)
        batch_op.create_index('ix_distribution_entry_user', ['user_id', 'role', 'mail_id'], unique=False)
        batch_op.create_index('ix_distribution_entry_department', ['department_id', 'role', 'mail_id'], unique=False)
        batch_op.create_index('ix_distribution_entry_requester', ['requested_by_id', 'role', 'mail_id'], unique=False)

    op.create_table('mail_read_mark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mail_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mail_id'], ['mail.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'mail_id', name='uq_mail_read_mark_user_mail')
    )
    with op.batch_alter_table('mail_read_mark', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_read_mark_mail_id'), ['mail_id'], unique=False)

    op.create_table('absence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('delegate_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('starts_on <= ends_on', name='ck_absence_period'),
    sa.CheckConstraint('user_id <> delegate_id', name='ck_absence_not_self'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['delegate_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('absence', schema=None) as batch_op:
        batch_op.create_index('ix_absence_delegate', ['delegate_id', 'starts_on', 'ends_on'], unique=False)
        batch_op.create_index('ix_absence_user', ['user_id', 'starts_on'], unique=False)


def downgrade():
    with op.batch_alter_table('absence', schema=None) as batch_op:
        batch_op.drop_index('ix_absence_user')
        batch_op.drop_index('ix_absence_delegate')
    op.drop_table('absence')

    with op.batch_alter_table('mail_read_mark', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_read_mark_mail_id'))
    op.drop_table('mail_read_mark')

    with op.batch_alter_table('distribution_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_distribution_entry_requester')
        batch_op.drop_index('ix_distribution_entry_department')
        batch_op.drop_index('ix_distribution_entry_user')
        batch_op.drop_index(batch_op.f('ix_distribution_entry_mail_id'))
    op.drop_table('distribution_entry')

    with op.batch_alter_table('mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_closed_at'))
        batch_op.drop_column('closed_at')

"""acknowledgement state stored on the mail

Revision ID: 0013
Revises: 0012

Two columns of mail keep the state the acknowledgement-of-receipt (AR)
baskets filter on (app/documents/acknowledgement_state.py):
acknowledgement_pending (the type needs ARs and a sender has no sent AR) and
acknowledged_at (when the latest AR was sent). Partial indexes hold only the
mail concerned: the columns the baskets test by equality, then the arrival
date and the columns of the visibility rule. ix_document_mail_kind_state
finds a mail's sent ARs by sender.

The backfill reads the mail types that need ARs from the latest applied
schema version; a register without any applied version has no mail pending.
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

VISIBILITY = ["created_by_id", "assignee_id", "initiating_department_id"]

ACKNOWLEDGED_AT = """
UPDATE mail SET acknowledged_at = (
    SELECT max(d.sent_at) FROM document d
    WHERE d.mail_id = mail.id AND d.kind = 'acknowledgement' AND d.state = 'sent'
)
WHERE EXISTS (
    SELECT 1 FROM document d WHERE d.mail_id = mail.id AND d.kind = 'acknowledgement' AND d.state = 'sent'
)
"""

PENDING = """
UPDATE mail SET acknowledgement_pending = :pending
WHERE mail_type IN :types AND EXISTS (
    SELECT 1 FROM mail_correspondent mc
    WHERE mc.mail_id = mail.id AND mc.role = 'sender' AND NOT EXISTS (
        SELECT 1 FROM document d
        WHERE d.mail_id = mc.mail_id AND d.correspondent_id = mc.correspondent_id
          AND d.kind = 'acknowledgement' AND d.state = 'sent'
    )
)
"""


def _types_needing_acknowledgement(connection):
    from app.configuration.loader import SourceFile, load_configuration

    files = connection.execute(sa.text("SELECT files FROM schema_version ORDER BY number DESC LIMIT 1")).scalar()
    if files is None:
        return []
    if isinstance(files, str):
        files = json.loads(files)
    configuration = load_configuration([SourceFile(name, text) for name, text in sorted(files.items())])
    return sorted(type_id for type_id, spec in configuration.mail_types.items() if spec.acknowledgement != "none")


def upgrade():
    op.add_column("mail", sa.Column("acknowledgement_pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("mail", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))

    # Before the backfill, whose subqueries look a mail's sent ARs up through it.
    op.create_index("ix_document_mail_kind_state", "document", ["mail_id", "kind", "state", "correspondent_id", "sent_at"])

    connection = op.get_bind()
    connection.execute(sa.text(ACKNOWLEDGED_AT))
    types = _types_needing_acknowledgement(connection)
    if types:
        statement = sa.text(PENDING).bindparams(sa.bindparam("types", expanding=True),
                                                sa.bindparam("pending", type_=sa.Boolean()))
        connection.execute(statement, {"types": types, "pending": True})

    op.create_index(
        "ix_mail_acknowledgement_pending", "mail",
        ["acknowledgement_pending", "handling_department_id", "status", "confidential", "arrival_date", "id",
         *VISIBILITY],
        sqlite_where=sa.text("acknowledgement_pending = 1"), postgresql_where=sa.text("acknowledgement_pending"),
    )
    op.create_index(
        "ix_mail_acknowledged", "mail",
        ["mail_type", "handling_department_id", "status", "confidential", "arrival_date", "id", *VISIBILITY,
         "acknowledged_at"],
        sqlite_where=sa.text("acknowledged_at IS NOT NULL"), postgresql_where=sa.text("acknowledged_at IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_mail_acknowledged", table_name="mail")
    op.drop_index("ix_mail_acknowledgement_pending", table_name="mail")
    op.drop_index("ix_document_mail_kind_state", table_name="document")
    with op.batch_alter_table("mail") as batch:
        batch.drop_column("acknowledged_at")
        batch.drop_column("acknowledgement_pending")

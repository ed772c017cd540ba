"""documents and their versions

Revision ID: 0008
Revises: 0007

Reply drafts and acknowledgements of receipt, each saved state of their file
kept as a numbered version; the .docx files of the declared templates; files
attached to queued e-mail (acknowledgements sent by e-mail).
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "document_template_file",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
    )
    op.create_index(
        "ix_document_template_file_current", "document_template_file", ["template_id", "language", "id"]
    )
    op.create_table(
        "email_attachment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "message_id", sa.Integer(), sa.ForeignKey("email_message.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(127), nullable=False),
    )
    op.create_index("ix_email_attachment_message_id", "email_attachment", ["message_id"])
    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mail_id", sa.Integer(), sa.ForeignKey("mail.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("template_code", sa.String(64)),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("correspondent_id", sa.Integer(), sa.ForeignKey("correspondent.id")),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("sent_by_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.Column("sending_channel", sa.String(16)),
    )
    op.create_index("ix_document_mail_id", "document", ["mail_id"])
    op.create_index("ix_document_kind_state", "document", ["kind", "state"])
    op.create_table(
        "document_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("document.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("docx_sha256", sa.String(64)),
        sa.Column("docx_size", sa.BigInteger()),
        sa.Column("pdf_sha256", sa.String(64)),
        sa.Column("pdf_size", sa.BigInteger()),
        sa.Column("signed", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("template_file_id", sa.Integer(), sa.ForeignKey("document_template_file.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
        sa.UniqueConstraint("document_id", "number", name="uq_document_version_number"),
    )
    op.create_index("ix_document_version_document_id", "document_version", ["document_id"])


def downgrade():
    op.drop_index("ix_document_version_document_id", table_name="document_version")
    op.drop_table("document_version")
    op.drop_index("ix_document_kind_state", table_name="document")
    op.drop_index("ix_document_mail_id", table_name="document")
    op.drop_table("document")
    op.drop_index("ix_email_attachment_message_id", table_name="email_attachment")
    op.drop_table("email_attachment")
    op.drop_index("ix_document_template_file_current", table_name="document_template_file")
    op.drop_table("document_template_file")

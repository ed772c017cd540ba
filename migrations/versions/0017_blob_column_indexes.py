"""indexes on the columns that name stored files

Revision ID: 0017
Revises: 0016

The nightly sweep of the content store (app/attachments/tasks.py) asks, for
each batch of stored files, which of them a row still names. attachment.sha256
had its index; the other columns whose rows grow with the register get one
here, so that each question reads an index instead of a whole table.
"""
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_document_version_pdf_sha256", "document_version", "pdf_sha256"),
    ("ix_document_version_docx_sha256", "document_version", "docx_sha256"),
    ("ix_email_attachment_sha256", "email_attachment", "sha256"),
    ("ix_signature_circuit_frozen_sha256", "signature_circuit", "frozen_sha256"),
)


def upgrade():
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade():
    for name, table, _column in INDEXES:
        op.drop_index(name, table_name=table)

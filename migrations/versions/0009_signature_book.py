"""signature book: visa circuits, their members, signature profiles

Revision ID: 0009
Revises: 0008

A circuit runs on one document version, frozen by the SHA-256 of its PDF; its
members are grouped in sequential steps. A profile holds the title and the
image of a signatory's visible signature block.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "signature_circuit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mail_id", sa.Integer(), sa.ForeignKey("mail.id", ondelete="CASCADE"), nullable=False),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("document.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model_id", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("document_version.id"), nullable=False),
        sa.Column("frozen_sha256", sa.String(64)),
        sa.Column("previous_status", sa.String(40), nullable=False),
        sa.Column("status_after_signature", sa.String(40), nullable=False),
        sa.Column("started_by_id", sa.Integer(), sa.ForeignKey("ab_user.id"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("row_version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_signature_circuit_mail_id", "signature_circuit", ["mail_id"])
    op.create_index("ix_signature_circuit_document_id", "signature_circuit", ["document_id"])
    op.create_index("ix_signature_circuit_state_step", "signature_circuit", ["state", "current_step"])
    op.create_table(
        "signature_circuit_member",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "circuit_id", sa.Integer(), sa.ForeignKey("signature_circuit.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by_id", sa.Integer(), sa.ForeignKey("ab_user.id")),
    )
    op.create_index("ix_signature_circuit_member_circuit_id", "signature_circuit_member", ["circuit_id"])
    op.create_index(
        "ix_signature_circuit_member_user", "signature_circuit_member", ["user_id", "circuit_id", "position"]
    )
    op.create_table(
        "signature_profile",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("title", sa.Text()),
        sa.Column("image_sha256", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("signature_profile")
    op.drop_index("ix_signature_circuit_member_user", table_name="signature_circuit_member")
    op.drop_index("ix_signature_circuit_member_circuit_id", table_name="signature_circuit_member")
    op.drop_table("signature_circuit_member")
    op.drop_index("ix_signature_circuit_state_step", table_name="signature_circuit")
    op.drop_index("ix_signature_circuit_document_id", table_name="signature_circuit")
    op.drop_index("ix_signature_circuit_mail_id", table_name="signature_circuit")
    op.drop_table("signature_circuit")

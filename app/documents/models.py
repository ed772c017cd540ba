"""Documents written by the prefecture and their versions.

A document belongs to one mail: a reply draft or an acknowledgement of receipt
(AR). Each saved state of its file is a ``DocumentVersion``; versions are never
overwritten, so a signature book can freeze one by its SHA-256 and any later
change is a new version. Files live in the content-addressed store, like
attachments.
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow

KINDS = ("reply", "acknowledgement")
# draft: being written; in_circuit: frozen in the signature book; signed: signed,
# waiting to be sent; sent: sent or printed; cancelled: abandoned.
STATES = ("draft", "in_circuit", "signed", "sent", "cancelled")
SENDING_CHANNELS = ("email", "print")


class Document(Model):
    __tablename__ = "document"
    __table_args__ = (
        Index("ix_document_kind_state", "kind", "state"),
        # A mail's sent ARs by sender, for its AR state (migration 0013). Without it SQLite, which has no
        # statistics, reads them through ix_document_kind_state: every sent AR of the register per mail.
        Index("ix_document_mail_kind_state", "mail_id", "kind", "state", "correspondent_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    # Code of the template declared in schemas/, None for a document uploaded by hand.
    template_code: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    # The correspondent addressed: an AR is made per sender.
    correspondent_id: Mapped[int | None] = mapped_column(ForeignKey("correspondent.id"))
    language: Mapped[str] = mapped_column(String(8), nullable=False, default="fr")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    sending_channel: Mapped[str | None] = mapped_column(String(16))

    mail = relationship("Mail")
    versions = relationship(
        "DocumentVersion", back_populates="document", order_by="DocumentVersion.number",
        cascade="all, delete-orphan",
    )


class DocumentVersion(Model):
    __tablename__ = "document_version"
    __table_args__ = (UniqueConstraint("document_id", "number", name="uq_document_version_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    # The editable file (.docx), as generated or as uploaded by the agent.
    docx_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    docx_size: Mapped[int | None] = mapped_column(BigInteger)
    # The PDF made from it by LibreOffice, or the signed PDF; None until converted.
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    pdf_size: Mapped[int | None] = mapped_column(BigInteger)
    signed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    # The template file it was generated from; None for an uploaded version.
    template_file_id: Mapped[int | None] = mapped_column(ForeignKey("document_template_file.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

    document = relationship("Document", back_populates="versions")


class TemplateFile(Model):
    """One .docx file of a declared template in one language; the newest row of a pair is the one used.

    Rows come from the schema files (``source`` "schema", recorded when
    ``flask schemas apply`` finds a file whose content changed) or from an
    administrator's upload (``source`` "upload"). Older rows stay, so every
    generated version can name the file it came from.
    """

    __tablename__ = "document_template_file"
    __table_args__ = (Index("ix_document_template_file_current", "template_id", "language", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[str] = mapped_column(String(64), nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

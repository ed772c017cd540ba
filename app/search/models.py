"""The search outbox: rows written with each change, drained by the indexer."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime, utcnow


class OutboxEvent(Model):
    __tablename__ = "search_outbox"
    __table_args__ = (Index("ix_search_outbox_pending", "processed_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(32), nullable=False)
    entity_id: Mapped[int] = mapped_column(Integer, nullable=False)
    operation: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SearchDocument(Model):
    """The embedded index entry of one mail: analysed terms for matching, original text for snippets.

    On SQLite the FTS5 table ``search_document_fts`` indexes ``terms`` (kept in
    step by triggers); on PostgreSQL the generated ``terms_vector`` tsvector
    column with a GIN index does. Both are created by migration 0004 only.
    """

    __tablename__ = "search_document"

    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), primary_key=True)
    # Registration number keys: every run of letters or digits, digits without leading zeros.
    chrono_key: Mapped[str] = mapped_column(String(80), nullable=False, index=True)
    chrono_tail: Mapped[str] = mapped_column(String(80), nullable=False, index=True)
    terms: Mapped[str] = mapped_column(Text, nullable=False)
    display_text: Mapped[str] = mapped_column(Text, nullable=False)
    attachment_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    # Mail.row_version when indexed, so that `flask search status` finds stale entries.
    mail_version: Mapped[int] = mapped_column(Integer, nullable=False)
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ExtractedText(Model):
    """Text extracted from one stored file, keyed by its SHA-256, so a rebuild never extracts twice."""

    __tablename__ = "search_extracted_text"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "text_layer", "docx", "odt", "email", "plain", "ocr", "none" or "failed".
    method: Mapped[str] = mapped_column(String(16), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    extracted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class SavedSearch(Model):
    """A search a user named and kept: the query string of the search page."""

    __tablename__ = "saved_search"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_saved_search_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    query_string: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

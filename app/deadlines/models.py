"""Requests for missing documents sent to the applicant of a mail (incomplete file)."""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from sqlalchemy import Date, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import JsonDocument, UTCDateTime, utcnow


class MissingDocumentsRecord(Model):
    """One "incomplete file" request: the documents asked for, their deadline and their arrival."""

    __tablename__ = "missing_documents_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True)
    requested_on: Mapped[date] = mapped_column(Date, nullable=False)
    # Last day the applicant was given to produce the documents.
    deadline: Mapped[date] = mapped_column(Date, nullable=False)
    documents: Mapped[list[str]] = mapped_column(JsonDocument, nullable=False, default=list)
    received_on: Mapped[date | None] = mapped_column(Date)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    received_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

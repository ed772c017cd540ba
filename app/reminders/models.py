"""Stored reminders: one row per reminder to send, with its due time and state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import JsonDocument, UTCDateTime, utcnow

# A step of the mail type's reminder plan, or the notice sent when the mail becomes late.
KINDS = ("step", "late")
STATES = ("pending", "sent", "cancelled")


class Reminder(Model):
    """One reminder of one mail; the sweep sends the pending rows whose due time has come."""

    __tablename__ = "reminder"
    __table_args__ = (
        # Only pending rows are indexed, so the sweep reads due rows and nothing else.
        Index(
            "ix_reminder_pending_due",
            "due_at",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    plan_id: Mapped[str | None] = mapped_column(String(64))
    step_index: Mapped[int | None] = mapped_column(Integer)
    # 1 for the first sending of a step, 2 and more for its repetitions.
    occurrence: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # The mail's due date when the row was planned.
    due_date: Mapped[date] = mapped_column(Date, nullable=False)
    # The working day the reminder is for; due_at is that day at REMINDER_HOUR, Europe/Paris.
    remind_on: Mapped[date] = mapped_column(Date, nullable=False)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    recipient_roles: Mapped[list[str]] = mapped_column(JsonDocument, nullable=False, default=list)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # User ids notified, or the reason the reminder was cancelled.
    outcome: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    mail = relationship("Mail")

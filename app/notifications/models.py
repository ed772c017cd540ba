"""In-app notifications, queued e-mail and each user's notification preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import JsonDocument, UTCDateTime, utcnow

LANGUAGES = ("fr", "en")
# immediate: one e-mail per notification; digest: one e-mail a day; off: in-app only.
EMAIL_MODES = ("immediate", "digest", "off")
# What became of a notification's e-mail.
EMAIL_STATES = ("none", "queued", "digest", "digested")
MESSAGE_STATES = ("pending", "sending", "sent", "failed")


class Notification(Model):
    """One event shown to one user in the portal, and possibly sent by e-mail."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_unread", "user_id", "read_at", "id"),
        Index(
            "ix_notification_digest",
            "user_id",
            sqlite_where=text("email_state = 'digest'"),
            postgresql_where=text("email_state = 'digest'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    # None means the system actor (scheduled jobs).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    params: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_state: Mapped[str] = mapped_column(String(16), nullable=False, default="none")

    mail = relationship("Mail")
    actor = relationship("User", foreign_keys=[actor_id])


class EmailMessage(Model):
    """An e-mail rendered and queued in the transaction that caused it, sent later by the scheduler."""

    __tablename__ = "email_message"
    __table_args__ = (
        Index(
            "ix_email_message_unsent",
            "next_attempt_at",
            sqlite_where=text("state IN ('pending', 'sending')"),
            postgresql_where=text("state IN ('pending', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    to_address: Mapped[str] = mapped_column(String(320), nullable=False)
    # Address for the recipient's reply: the handling department's, for e-mails to correspondents.
    reply_to: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    body_text: Mapped[str] = mapped_column(Text, nullable=False)
    body_html: Mapped[str] = mapped_column(Text, nullable=False)
    # The Message-ID header, fixed at queueing so that a resent copy can be recognised.
    message_id: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # While state is "sending": the time after which another runner may take the message over.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attachments: Mapped[list[EmailAttachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="EmailAttachment.id"
    )


class EmailAttachment(Model):
    """A file sent with a queued e-mail, read from the content store when the message is built."""

    __tablename__ = "email_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("email_message.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(127), nullable=False)

    message: Mapped[EmailMessage] = relationship(back_populates="attachments")


class UserPreference(Model):
    """A user's language for e-mail and how they want to receive notifications."""

    __tablename__ = "user_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), nullable=False, default="fr")
    email_mode: Mapped[str] = mapped_column(String(16), nullable=False, default="immediate")
    # Events the user wants in the portal only, never by e-mail.
    muted_events: Mapped[list[str]] = mapped_column(JsonDocument, nullable=False, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

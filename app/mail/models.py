"""The mail record, its registration counters and its history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import JsonDocument, UTCDateTime, utcnow

CATEGORIES = ("incoming", "outgoing", "internal")
CHANNELS = ("post", "email", "web", "hand", "internal")
PRIORITIES = ("normal", "urgent", "very_urgent")


class Mail(Model):
    """One piece of correspondence (courrier); custom fields live in ``fields``."""

    __tablename__ = "mail"
    __table_args__ = (
        UniqueConstraint("category", "chrono_year", "chrono_number", name="uq_mail_chrono_sequence"),
        # Department baskets: scope, statuses, sort, then every column the visibility rule tests, so that
        # counts and the sorted ids of a page are read from the index alone (migration 0006).
        Index(
            "ix_mail_basket", "handling_department_id", "status", "due_date", "id",
            "confidential", "created_by_id", "assignee_id", "initiating_department_id",
        ),
        Index(
            "ix_mail_basket_closed", "handling_department_id", "status", "closed_at", "id",
            "confidential", "created_by_id", "assignee_id", "initiating_department_id",
        ),
        # Department basket counts: mail that is not confidential is counted by an index range alone.
        # confidential comes first: with department and status first, SQLite 3.40 also chose this
        # index for pages sorted by due date, which it is not sorted by, and sorted every open mail.
        Index(
            "ix_mail_basket_visibility", "confidential", "handling_department_id", "status", "due_date",
            "created_by_id", "assignee_id", "initiating_department_id",
        ),
        # The confidential part of those counts and pages, where the rule's distribution-list test needs id
        # (migration 0014). PostgreSQL only: every SQLite index already ends with the rowid, which is id.
        Index(
            "ix_mail_basket_confidential", "handling_department_id", "status", "due_date", "id",
            "confidential", "created_by_id", "assignee_id", "initiating_department_id",
            postgresql_where=text("confidential IS TRUE"),
        ).ddl_if(dialect="postgresql"),
        Index("ix_mail_assignee", "assignee_id", "status", "due_date"),
        # "Registered by me": its status filter, count and sorted page ids come from the index alone (migration 0011).
        Index("ix_mail_created_by", "created_by_id", "arrival_date", "id", "status"),
        # Acknowledgement baskets (migration 0013): partial indexes of the mail concerned only. Every column
        # the baskets test by equality comes first, the state or the type included, so that SQLite, which
        # has no statistics, prefers them to the indexes of every mail; then the sort and the visibility columns.
        Index(
            "ix_mail_acknowledgement_pending", "acknowledgement_pending", "handling_department_id", "status",
            "confidential", "arrival_date", "id", "created_by_id", "assignee_id", "initiating_department_id",
            sqlite_where=text("acknowledgement_pending = 1"),
        ).ddl_if(dialect="sqlite"),
        # On PostgreSQL without the state, constant under the predicate (migration 0015): PostgreSQL drops the
        # condition on it, and with no condition on the first column it tested the statuses entry by entry.
        Index(
            "ix_mail_acknowledgement_pending", "handling_department_id", "status", "confidential", "arrival_date",
            "id", "created_by_id", "assignee_id", "initiating_department_id",
            postgresql_where=text("acknowledgement_pending"),
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_mail_acknowledged", "mail_type", "handling_department_id", "status", "confidential", "arrival_date",
            "id", "created_by_id", "assignee_id", "initiating_department_id", "acknowledged_at",
            sqlite_where=text("acknowledged_at IS NOT NULL"), postgresql_where=text("acknowledged_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chrono: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    chrono_year: Mapped[int] = mapped_column(Integer, nullable=False)
    chrono_number: Mapped[int] = mapped_column(Integer, nullable=False)
    category: Mapped[str] = mapped_column(String(16), nullable=False)
    mail_type: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    letter_date: Mapped[date | None] = mapped_column(Date)
    arrival_date: Mapped[date] = mapped_column(Date, nullable=False)
    due_date: Mapped[date | None] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    priority: Mapped[str] = mapped_column(String(16), nullable=False, default="normal")
    confidential: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(40), nullable=False)
    handling_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), nullable=False)
    initiating_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    fields: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False, default=dict)
    schema_version: Mapped[int] = mapped_column(ForeignKey("schema_version.number"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Set by the close actions, cleared on reopening.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Acknowledgement of receipt state, kept by app/documents/acknowledgement_state.py in the transaction
    # of every change: a sender still waits for an AR the type needs, and when the latest AR was sent.
    acknowledgement_pending: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optimistic lock: concurrent updates of the same mail fail instead of overwriting.
    row_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    handling_department = relationship("Department", foreign_keys=[handling_department_id])
    initiating_department = relationship("Department", foreign_keys=[initiating_department_id])
    assignee = relationship("User", foreign_keys=[assignee_id])
    created_by = relationship("User", foreign_keys=[created_by_id])
    correspondents: Mapped[list[MailCorrespondent]] = relationship(
        back_populates="mail", cascade="all, delete-orphan", order_by="MailCorrespondent.id"
    )
    attachments = relationship(
        "Attachment", back_populates="mail", cascade="all, delete-orphan", order_by="Attachment.id"
    )
    history: Mapped[list[HistoryEntry]] = relationship(
        back_populates="mail", cascade="all, delete-orphan", order_by="HistoryEntry.id"
    )

    __mapper_args__ = {"version_id_col": row_version}

    def __repr__(self) -> str:
        return f"<Mail {self.chrono}>"


class MailCorrespondent(Model):
    """Link between a mail and a correspondent, as sender or recipient."""

    __tablename__ = "mail_correspondent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True)
    correspondent_id: Mapped[int] = mapped_column(ForeignKey("correspondent.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)

    mail: Mapped[Mail] = relationship(back_populates="correspondents")
    correspondent = relationship("Correspondent")


class ChronoCounter(Model):
    """Last registration number issued per category and year.

    The counter row is incremented in the same transaction as the mail insert,
    so a rolled-back registration also rolls back its number: no gap, no reuse.
    """

    __tablename__ = "chrono_counter"

    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, nullable=False)


class RegistrationSubmission(Model):
    """A registration form's one-time token, and the mail it registered.

    A form sent twice, by a double click or a page sent again, carries the same
    token: the second registration fails on this primary key and the agent is
    shown the mail of the first. The digest of the values sent distinguishes a
    page sent again from a page reused for other values after going back to it.
    """

    __tablename__ = "registration_submission"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), nullable=False)
    # SHA-256 of the values typed in the form, in hexadecimal (see app/mail/operations.py).
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class HistoryEntry(Model):
    """The legal audit trail (historique) of a mail: who did what, when, for whom."""

    __tablename__ = "history_entry"
    __table_args__ = (
        # What delegates did on an agent's behalf, for the summary shown when the agent comes back (migration 0021).
        Index("ix_history_entry_on_behalf_of", "on_behalf_of_id", "at", postgresql_where=text("on_behalf_of_id IS NOT NULL"),
              sqlite_where=text("on_behalf_of_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # None means the system actor (scheduled jobs, intake).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    on_behalf_of_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False, default=dict)
    schema_version: Mapped[int | None] = mapped_column(Integer)

    mail: Mapped[Mail] = relationship(back_populates="history")
    actor = relationship("User", foreign_keys=[actor_id])
    on_behalf_of = relationship("User", foreign_keys=[on_behalf_of_id])

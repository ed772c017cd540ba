"""The distribution list (liste de diffusion) of a mail, besides its one assignee.

The assignee stays on ``Mail.assignee_id``: exactly one person in charge.
Each ``DistributionEntry`` adds a user or a whole department, either as a
copy for information or as an opinion request (avis) with its own deadline.
The signature book also lists each member of a visa circuit, as a user with
the role ``circuit``.
``ReadMark`` records that a user has read a mail received in copy.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow

COPY = "copy"
OPINION = "opinion"
# A member of a visa circuit on the mail: listed so that the visibility rule shows them the mail.
CIRCUIT = "circuit"
ENTRY_ROLES = (COPY, OPINION, CIRCUIT)


class DistributionEntry(Model):
    """A user or a department on a mail's distribution list, for information or for an opinion."""

    __tablename__ = "distribution_entry"
    __table_args__ = (
        CheckConstraint(
            "(user_id IS NULL) <> (department_id IS NULL)", name="ck_distribution_entry_one_target"
        ),
        Index("ix_distribution_entry_user", "user_id", "role", "mail_id"),
        Index("ix_distribution_entry_department", "department_id", "role", "mail_id"),
        Index("ix_distribution_entry_requester", "requested_by_id", "role", "mail_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Opinions only: the deadline, the answer, who gave it and when.
    due_date: Mapped[date | None] = mapped_column(Date)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

    mail = relationship("Mail")
    user = relationship("User", foreign_keys=[user_id])
    department = relationship("Department")
    requested_by = relationship("User", foreign_keys=[requested_by_id])
    answered_by = relationship("User", foreign_keys=[answered_by_id])

    @property
    def pending(self) -> bool:
        return self.role == OPINION and self.answered_at is None


class ReadMark(Model):
    """The moment a user marked a mail received in copy as read."""

    __tablename__ = "mail_read_mark"
    __table_args__ = (UniqueConstraint("user_id", "mail_id", name="uq_mail_read_mark_user_mail"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

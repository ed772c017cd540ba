"""Absences (absence / délégation): an agent away hands their baskets to a delegate."""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow


class Absence(Model):
    """An absence period, first and last day included, with the delegate acting for the absent agent."""

    __tablename__ = "absence"
    __table_args__ = (
        CheckConstraint("starts_on <= ends_on", name="ck_absence_period"),
        CheckConstraint("user_id <> delegate_id", name="ck_absence_not_self"),
        Index("ix_absence_delegate", "delegate_id", "starts_on", "ends_on"),
        Index("ix_absence_user", "user_id", "starts_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    delegate_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[date] = mapped_column(Date, nullable=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    user = relationship("User", foreign_keys=[user_id])
    delegate = relationship("User", foreign_keys=[delegate_id])

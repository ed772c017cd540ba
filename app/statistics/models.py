"""Pre-aggregated statistics: exact counters per day and per month, the per-mail facts behind them, their state.

``app.statistics.counters`` keeps these tables up to date in the flush that
changes a mail, so the dashboard sums a few thousand counter rows instead of
reading every mail of the period.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from sqlalchemy import JSON, Boolean, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime

# Granularities of StatisticsCount.day: one calendar day, or the month starting on that day.
DAY = "D"
MONTH = "M"


class StatisticsCount(Model):
    """Number of mails (or attachments) sharing one key: measure, day or month, dimensions and value.

    ``value`` and ``flag`` depend on the measure (see
    ``app.statistics.counters.contributions``), for example the processing
    time in working days and whether the due date was met. ``assignee_id`` is
    0 for no assignee, so that the key has no NULL. On SQLite the table is
    stored WITHOUT ROWID, so the primary key index holds the counts and a
    dashboard reads the index alone.
    """

    __tablename__ = "statistics_count"
    __table_args__ = {"sqlite_with_rowid": False}

    measure: Mapped[str] = mapped_column(String(16), primary_key=True)
    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    confidential: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    assignee_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


class MailStatistics(Model):
    """What one mail contributes to the counters, so that a change subtracts exactly what was added."""

    __tablename__ = "mail_statistics"

    # No foreign key: the row of a deleted mail is removed by the flush listener, after its counts.
    mail_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    arrival_date: Mapped[date] = mapped_column(Date, nullable=False)
    department_id: Mapped[int] = mapped_column(Integer, nullable=False)
    mail_type: Mapped[str] = mapped_column(String(64), nullable=False)
    category: Mapped[str] = mapped_column(String(16), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    confidential: Mapped[bool] = mapped_column(Boolean, nullable=False)
    assignee_id: Mapped[int] = mapped_column(Integer, nullable=False)
    is_open: Mapped[bool] = mapped_column(Boolean, nullable=False)
    due_date: Mapped[date | None] = mapped_column(Date)
    # Europe/Paris day of closed_at, and working days from arrival to it.
    closed_on: Mapped[date | None] = mapped_column(Date)
    processing_days: Mapped[int | None] = mapped_column(Integer)
    # Working days from arrival to the first assignment; None while never assigned.
    first_assignment_days: Mapped[int | None] = mapped_column(Integer)
    # Fate of the first acknowledgement of receipt: None without a sender, else NOT_SENT, IN_TIME or LATE.
    acknowledgement: Mapped[int | None] = mapped_column(Integer)
    attachments: Mapped[int] = mapped_column(Integer, nullable=False)


class StatisticsState(Model):
    """One row, present when the counters match every mail: written by the rebuild and by a migration on an empty register.

    ``fingerprint`` holds the configuration the counters were computed with
    (open statuses, assigning events, department calendars). The dashboard
    uses the counters only while the current configuration has the same one.
    """

    __tablename__ = "statistics_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fingerprint: Mapped[dict] = mapped_column(JSON, nullable=False)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

"""The scheduler lease and the persisted state of each scheduled job."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime


class SchedulerLease(Model):
    """The right to run scheduled jobs, held by one process until ``expires_at``."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "<host>:<pid>:<random>" of the holding process.
    holder: Mapped[str] = mapped_column(String(255), nullable=False)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ScheduledJob(Model):
    """When a job last ran and how, and when it runs next; survives restarts."""

    __tablename__ = "scheduler_job"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "success" or "failure".
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_summary: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_holder: Mapped[str | None] = mapped_column(String(255))
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Runs that started later than their slot by more than the tolerance (downtime, overrun).
    late_runs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_late_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_late_by_seconds: Mapped[int | None] = mapped_column(Integer)

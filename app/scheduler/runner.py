"""The scheduler: one pass at a time over the jobs whose time has come, by the lease holder only.

A pass (``SchedulerRunner.run_pass``) takes or renews the database lease, then
runs each job whose persisted ``next_run_at`` has passed and sets the next
one from the current time; a job whose summary counts ``remaining`` work runs
again at the next pass. Missed slots therefore give one run, not one per
slot: after downtime a job runs once, and the run is recorded as late. The
jobs work on stored rows (reminders, queued e-mail, notifications, the search
outbox), so they catch up whatever fell due meanwhile.

APScheduler's BackgroundScheduler only triggers passes, every
``SCHEDULER_INTERVAL_SECONDS``. With ``SCHEDULER_MODE = "in-process"`` every
web process starts one at its first request (or when gunicorn starts the
worker), and the lease lets one of them work. The Flask reloader's watcher
process serves no request, so it never starts one. ``flask scheduler run``
runs the same passes in a dedicated process.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import func, select

from app.attachments.tasks import sweep_content_store
from app.core.db import run_in_write_transaction
from app.core.types import utcnow
from app.extensions import db
from app.mail.tasks import forget_registration_submissions
from app.notifications.models import EmailMessage
from app.notifications.tasks import deliver_email, queue_digests
from app.reminders.models import Reminder
from app.reminders.tasks import sweep_reminders
from app.scheduler import lease
from app.scheduler.models import ScheduledJob, SchedulerLease
from app.search.tasks import index_pending_changes, recognise_scanned_attachments

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")
# A pass that APScheduler could not start on time (sleeping host, overrun) still runs if
# it is less than this late. Catch-up does not depend on it: jobs read due rows.
MISFIRE_GRACE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class JobDefinition:
    id: str
    run: Callable[[datetime], dict[str, int]]
    # The next slot strictly after the given time.
    next_slot: Callable[[datetime, dict[str, Any]], datetime]
    # How late a run may start before it is recorded as a late run, in seconds.
    tolerance: Callable[[dict[str, Any]], float]


def _slack(interval_seconds: float) -> timedelta:
    """Return how early a job may run: APScheduler may start a pass a little before the slot the last pass set.

    Without it a job due every pass ran every other pass, its slot a few
    milliseconds after the start of the pass that should have run it.
    """
    return timedelta(seconds=min(5.0, interval_seconds / 10))


def _every_pass(now: datetime, config: dict[str, Any]) -> datetime:
    return now + timedelta(seconds=float(config["SCHEDULER_INTERVAL_SECONDS"]))


def _pass_tolerance(config: dict[str, Any]) -> float:
    return max(3 * float(config["SCHEDULER_INTERVAL_SECONDS"]), 300.0)


def _daily_at(hour_setting: str) -> Callable[[datetime, dict[str, Any]], datetime]:
    """Return the slot function of a job run each day at the hour (Europe/Paris) of the setting ``hour_setting``."""
    def next_slot(now: datetime, config: dict[str, Any]) -> datetime:
        local = now.astimezone(PARIS)
        hour = time(int(config[hour_setting]))
        slot = datetime.combine(local.date(), hour, tzinfo=PARIS)
        if slot <= local:
            slot = datetime.combine(local.date() + timedelta(days=1), hour, tzinfo=PARIS)
        return slot.astimezone(UTC)
    return next_slot


# Order matters: e-mail queued by the first two jobs leaves in the same pass.
JOBS: tuple[JobDefinition, ...] = (
    JobDefinition("send_reminders", sweep_reminders, _every_pass, _pass_tolerance),
    JobDefinition("queue_digests", queue_digests, _daily_at("DIGEST_HOUR"), _pass_tolerance),
    JobDefinition("deliver_email", deliver_email, _every_pass, _pass_tolerance),
    # Last, so that the changes made by the jobs above are indexed in the same pass.
    JobDefinition("index_search_outbox", index_pending_changes, _every_pass, _pass_tolerance),
    JobDefinition("recognise_attachments", recognise_scanned_attachments, _every_pass, _pass_tolerance),
    JobDefinition("sweep_content_store", sweep_content_store, _daily_at("STORAGE_SWEEP_HOUR"), _pass_tolerance),
    JobDefinition("forget_registration_submissions", forget_registration_submissions,
                  _daily_at("STORAGE_SWEEP_HOUR"), _pass_tolerance),
)


@dataclass
class PassResult:
    holder: str
    held: bool
    ran: dict[str, dict[str, int]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"holder": self.holder, "held": self.held, "ran": self.ran, "failed": self.failed}


def _first_slot(job: JobDefinition, now: datetime, config: dict[str, Any]) -> datetime:
    # Jobs run on every pass start at once; the digest waits for its hour.
    return now if job.next_slot is _every_pass else job.next_slot(now, config)


def _load_state(job: JobDefinition, now: datetime, config: dict[str, Any]) -> ScheduledJob:
    def load() -> ScheduledJob:
        state = db.session.get(ScheduledJob, job.id)
        if state is None:
            state = ScheduledJob(
                id=job.id, next_run_at=_first_slot(job, now, config), consecutive_failures=0,
                total_runs=0, total_failures=0, late_runs=0,
            )
            db.session.add(state)
        return state

    return run_in_write_transaction(load, f"load state of job {job.id}")


def _start_run(job: JobDefinition, holder: str, now: datetime, config: dict[str, Any]) -> None:
    def start() -> None:
        state = db.session.get(ScheduledJob, job.id)
        assert state is not None
        assert state.next_run_at is not None
        late_by = (now - state.next_run_at).total_seconds()
        if late_by > job.tolerance(config):
            state.late_runs += 1
            state.last_late_at = now
            state.last_late_by_seconds = int(late_by)
            log.warning(
                "job %s missed its run of %s (late by %s s, the scheduler was stopped or busy): running it once now",
                job.id, state.next_run_at.isoformat(), int(late_by),
            )
        state.last_started_at = now
        state.last_holder = holder
        state.next_run_at = job.next_slot(now, config)

    run_in_write_transaction(start, f"start job {job.id}")


def _finish_run(job_id: str, summary: dict[str, int] | None, error: str | None, now: datetime) -> None:
    """Record the end of a run. A summary with ``remaining`` work runs the job again at the next pass after ``now``."""
    def finish() -> None:
        state = db.session.get(ScheduledJob, job_id)
        assert state is not None
        finished = utcnow()
        if summary and summary.get("remaining"):
            state.next_run_at = now
        state.last_finished_at = finished
        state.total_runs += 1
        if error is None:
            state.last_outcome = "success"
            state.last_success_at = finished
            state.last_summary = ", ".join(f"{key}: {value}" for key, value in (summary or {}).items())
            state.last_error = None
            state.consecutive_failures = 0
        else:
            state.last_outcome = "failure"
            state.last_error = error[:4000]
            state.consecutive_failures += 1
            state.total_failures += 1

    run_in_write_transaction(finish, f"finish job {job_id}")


class SchedulerRunner:
    """Runs passes for one process, on demand (``run_pass``) or every interval (``start``)."""

    def __init__(self, app: Flask, holder: str | None = None, interval_seconds: float | None = None):
        self.app = app
        self.holder = holder or lease.new_holder_id()
        self.interval_seconds = float(interval_seconds or app.config["SCHEDULER_INTERVAL_SECONDS"])
        self._scheduler: BackgroundScheduler | None = None

    def run_pass(self, now: datetime | None = None) -> PassResult:
        """Run the due jobs if this runner holds, or can take, the lease."""
        now = now or utcnow()
        config = self.app.config
        lease_seconds = max(int(config["SCHEDULER_LEASE_SECONDS"]), int(3 * self.interval_seconds))
        with self.app.app_context():
            if not lease.acquire(self.holder, now, lease_seconds):
                return PassResult(self.holder, held=False)
            result = PassResult(self.holder, held=True)
            for job in JOBS:
                state = _load_state(job, now, config)
                if state.next_run_at is not None and state.next_run_at > now + _slack(self.interval_seconds):
                    continue
                if not lease.acquire(self.holder, now, lease_seconds):
                    log.warning("scheduler lease lost by %s during a pass; stopping the pass", self.holder)
                    break
                self._run_job(job, now, result)
            return result

    def _run_job(self, job: JobDefinition, now: datetime, result: PassResult) -> None:
        _start_run(job, self.holder, now, self.app.config)
        try:
            summary = job.run(now)
        except Exception as exc:  # a failing job must not stop the others; it is logged and recorded
            db.session.rollback()
            log.exception("job %s failed", job.id)
            _finish_run(job.id, None, f"{type(exc).__name__}: {exc}", now)
            result.failed.append(job.id)
            return
        _finish_run(job.id, summary, None, now)
        result.ran[job.id] = summary

    def _pass_from_apscheduler(self) -> None:
        try:
            self.run_pass()
        except Exception:  # APScheduler would only log it; the next pass retries
            log.exception("scheduler pass of %s failed", self.holder)

    def start(self) -> None:
        """Start passes every interval in a background thread; the first pass runs at once."""
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )
        scheduler.add_job(
            self._pass_from_apscheduler, "interval", seconds=self.interval_seconds,
            id="estafette-pass", next_run_time=datetime.now(UTC),
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler %s started, a pass every %s s", self.holder, self.interval_seconds)

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def shutdown(self) -> None:
        """Stop the passes, wait for the current one, and hand the lease over."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        self._scheduler = None
        with self.app.app_context():
            lease.release(self.holder, utcnow())
        log.info("scheduler %s stopped", self.holder)


# --- In-process start ---------------------------------------------------------------------

_in_process_lock = threading.Lock()
_in_process_runner: SchedulerRunner | None = None


def in_process_runner() -> SchedulerRunner | None:
    return _in_process_runner


def start_in_process(app: Flask) -> SchedulerRunner | None:
    """Start this process's scheduler once, when SCHEDULER_MODE is "in-process"."""
    global _in_process_runner
    if _in_process_runner is not None or app.config.get("SCHEDULER_MODE") != "in-process":
        return _in_process_runner
    with _in_process_lock:
        if _in_process_runner is None:
            runner = SchedulerRunner(app)
            runner.start()
            atexit.register(runner.shutdown)
            _in_process_runner = runner
    return _in_process_runner


def install(app: Flask) -> None:
    """Start the in-process scheduler at the first request this process serves."""
    if app.config.get("SCHEDULER_MODE") != "in-process":
        return

    def start_before_request() -> None:
        if _in_process_runner is None:
            start_in_process(app)

    app.before_request(start_before_request)


# --- State shown to administrators --------------------------------------------------------


@dataclass
class SchedulerStatus:
    lease: SchedulerLease | None
    lease_active: bool
    jobs: list[ScheduledJob]
    pending_reminders: int
    due_reminders: int
    pending_email: int
    failed_email: int
    mode: str


def scheduler_status(app: Flask, now: datetime | None = None) -> SchedulerStatus:
    """Read the lease, the jobs' state and the queue sizes; call inside an app context."""
    now = now or utcnow()
    current = lease.current_lease()
    jobs = {row.id: row for row in db.session.execute(select(ScheduledJob)).scalars()}

    def count(statement: Any) -> int:
        return int(db.session.execute(statement).scalar_one())

    return SchedulerStatus(
        lease=current,
        lease_active=current is not None and current.expires_at > now,
        jobs=[jobs[job.id] for job in JOBS if job.id in jobs],
        pending_reminders=count(select(func.count()).select_from(Reminder).where(Reminder.state == "pending")),
        due_reminders=count(
            select(func.count()).select_from(Reminder).where(Reminder.state == "pending", Reminder.due_at <= now)
        ),
        pending_email=count(
            select(func.count()).select_from(EmailMessage).where(EmailMessage.state.in_(("pending", "sending")))
        ),
        failed_email=count(select(func.count()).select_from(EmailMessage).where(EmailMessage.state == "failed")),
        mode=str(app.config.get("SCHEDULER_MODE")),
    )

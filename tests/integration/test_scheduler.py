"""The scheduler: lease, exactly-once sending with competing runners and processes, its pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select, update

from app.core.types import utcnow
from app.extensions import db
from app.mail.models import HistoryEntry
from app.notifications.models import EmailMessage, Notification
from app.reminders import operations as reminder_operations
from app.reminders.models import Reminder
from app.reminders.operations import ReminderSweepFailed, send_due_reminders
from app.scheduler import lease
from app.scheduler.models import ScheduledJob
from app.scheduler.runner import JOBS, JobDefinition, SchedulerRunner, in_process_runner
from tests.conftest import REPO
from tests.integration.test_reminders import register

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def make_due(count: int, at: datetime) -> list[int]:
    """Register ``count`` mails and make the first reminder of each due at ``at``."""
    ids = []
    for number in range(count):
        mail = register(subject=f"Demande {number}")
        first = db.session.execute(
            select(Reminder).where(Reminder.mail_id == mail.id).order_by(Reminder.remind_on).limit(1)
        ).scalar_one()
        ids.append(first.id)
    db.session.execute(update(Reminder).where(Reminder.id.in_(ids)).values(due_at=at))
    db.session.commit()
    return ids


def count(statement) -> int:
    return int(db.session.execute(statement).scalar_one())


def reminder_history_count() -> int:
    return count(select(func.count()).select_from(HistoryEntry).where(HistoryEntry.event == "reminder_sent"))


# --- Lease ----------------------------------------------------------------------------


def test_lease_held_by_one_holder(app_context):
    first = lease.acquire("first", NOW, 60)
    second = lease.acquire("second", NOW + timedelta(seconds=30), 60)
    renewed = lease.acquire("first", NOW + timedelta(seconds=40), 60)

    assert (first, second, renewed) == (True, False, True)


def test_expired_lease_taken_over(app_context):
    lease.acquire("first", NOW, 60)

    taken = lease.acquire("second", NOW + timedelta(seconds=61), 60)

    assert taken is True
    assert lease.current_lease().holder == "second"


def test_released_lease_taken_at_once(app_context):
    lease.acquire("first", NOW, 600)
    lease.release("first", NOW + timedelta(seconds=1))

    assert lease.acquire("second", NOW + timedelta(seconds=2), 60) is True


def test_runner_without_lease_runs_nothing(app, app_context):
    make_due(2, NOW - timedelta(minutes=1))
    lease.acquire("someone-else", NOW, 600)

    result = SchedulerRunner(app, holder="me").run_pass(NOW)

    assert result.held is False
    assert result.ran == {}
    assert reminder_history_count() == 0


# --- Exactly once ------------------------------------------------------------------------


@pytest.mark.concurrency
def test_competing_sweeps_send_each_reminder_once(app, app_context):
    reminder_ids = make_due(6, NOW - timedelta(minutes=1))
    barrier = threading.Barrier(2)
    totals: list[int] = []

    def sweep() -> None:
        with app.app_context():
            barrier.wait()
            totals.append(send_due_reminders(NOW).sent)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    db.session.expire_all()
    assert sum(totals) == 6
    assert reminder_history_count() == 6
    states = db.session.execute(select(Reminder.state).where(Reminder.id.in_(reminder_ids))).scalars().all()
    assert set(states) == {"sent"}
    assert count(select(func.count()).select_from(Notification).where(Notification.event == "reminder_due")) == 6


@pytest.mark.concurrency
def test_competing_runners_one_holds_lease(app, app_context):
    make_due(4, NOW - timedelta(minutes=1))
    barrier = threading.Barrier(2)
    results = []

    def run(holder: str) -> None:
        barrier.wait()
        results.append(SchedulerRunner(app, holder=holder).run_pass(NOW))

    threads = [threading.Thread(target=run, args=(name,)) for name in ("worker-1", "worker-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(result.held for result in results) == [False, True]
    assert reminder_history_count() == 4


@pytest.mark.concurrency
def test_two_scheduler_processes_send_once(app, app_context, tmp_path):
    make_due(5, utcnow() - timedelta(minutes=1))
    environment = {
        **os.environ,
        "ESTAFETTE_ENV": "test",
        "ESTAFETTE_TEST_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "ESTAFETTE_VAR_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "flask", "--app", "run.py", "scheduler", "run", "--passes", "4", "--interval", "0.3"]
    processes = [
        subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=180) for process in processes]

    assert [process.returncode for process in processes] == [0, 0], [error for _output, error in outputs]
    passes = [json.loads(line) for output, _error in outputs for line in output.splitlines() if line.startswith("{")]
    sent = sum(item["ran"].get("send_reminders", {}).get("sent", 0) for item in passes)
    assert sent == 5, (passes, [error[-2000:] for _output, error in outputs])
    db.session.expire_all()
    assert reminder_history_count() == 5
    delivered = count(select(func.count()).select_from(EmailMessage).where(EmailMessage.state == "sent"))
    outbox_files = list((tmp_path / "test-mail-outbox").glob("*.eml"))
    assert len(outbox_files) == delivered


def test_sweep_in_small_batches_sends_each_once(app_context):
    reminder_ids = make_due(5, NOW - timedelta(minutes=1))

    summary = send_due_reminders(NOW, transaction_size=2)

    assert summary.sent == 5
    assert reminder_history_count() == 5
    states = db.session.execute(select(Reminder.state).where(Reminder.id.in_(reminder_ids))).scalars().all()
    assert set(states) == {"sent"}


def test_failing_reminder_spares_the_others(app_context, monkeypatch):
    reminder_ids = make_due(3, NOW - timedelta(minutes=1))
    failing_id = reminder_ids[1]
    send = reminder_operations._send

    def send_or_fail(reminder, recipients, sweep):
        if reminder.id == failing_id:
            raise RuntimeError("template missing")
        return send(reminder, recipients, sweep)

    monkeypatch.setattr(reminder_operations, "_send", send_or_fail)
    with pytest.raises(ReminderSweepFailed) as failure:
        send_due_reminders(NOW)
    monkeypatch.undo()
    history_after_failure = reminder_history_count()
    db.session.expire_all()
    failing_state = db.session.get(Reminder, failing_id).state
    retry = send_due_reminders(NOW + timedelta(minutes=1))

    assert failure.value.summary.failed == [failing_id]
    assert failure.value.summary.sent == 2
    assert history_after_failure == 2
    assert failing_state == "pending"
    assert retry.sent == 1
    assert reminder_history_count() == 3
    assert count(select(func.count()).select_from(Notification).where(Notification.event == "reminder_due")) == 3


def test_sweep_reads_do_not_grow_with_reminders(app_context):
    def selects_of_sweep(at: datetime) -> int:
        selects = 0

        def count_select(_connection, _cursor, statement, *_rest) -> None:
            nonlocal selects
            selects += statement.lstrip().upper().startswith("SELECT")

        event.listen(db.engine, "before_cursor_execute", count_select)
        try:
            send_due_reminders(at)
        finally:
            event.remove(db.engine, "before_cursor_execute", count_select)
        return selects

    make_due(2, NOW - timedelta(minutes=1))
    for_two = selects_of_sweep(NOW)
    later = NOW + timedelta(hours=1)
    make_due(6, later - timedelta(minutes=1))
    for_six = selects_of_sweep(later)

    assert for_six == for_two


# --- Jobs ------------------------------------------------------------------------------------


def test_failing_job_recorded_and_others_run(app, app_context, monkeypatch):
    def broken(now: datetime) -> dict[str, int]:
        raise RuntimeError("disk full")

    jobs = (JobDefinition("send_reminders", broken, JOBS[0].next_slot, JOBS[0].tolerance), *JOBS[1:])
    monkeypatch.setattr("app.scheduler.runner.JOBS", jobs)

    result = SchedulerRunner(app, holder="me").run_pass(NOW)

    assert result.failed == ["send_reminders"]
    assert "deliver_email" in result.ran
    state = db.session.get(ScheduledJob, "send_reminders")
    assert state.last_outcome == "failure"
    assert state.last_error == "RuntimeError: disk full"
    assert state.consecutive_failures == 1


def test_background_scheduler_sends_due_reminders(app, app_context):
    make_due(2, utcnow() - timedelta(minutes=1))
    runner = SchedulerRunner(app, holder="background", interval_seconds=0.2)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while reminder_history_count() < 2 and time.monotonic() < deadline:
            db.session.rollback()
            time.sleep(0.1)
    finally:
        runner.shutdown()

    db.session.rollback()
    assert reminder_history_count() == 2
    assert lease.current_lease().expires_at <= utcnow()


def test_in_process_scheduler_off_in_tests(app, client_as):
    client_as("sejour").get("/")

    assert app.config["SCHEDULER_MODE"] == "off"
    assert in_process_runner() is None


# --- Pages and command --------------------------------------------------------------------------


def test_scheduler_page_for_administrators(app, client_as):
    SchedulerRunner(app, holder="page-test").run_pass(NOW)

    page = client_as("admin").get("/scheduler/")

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-job="send_reminders"' in text
    assert "page-test" in text
    assert "Relances <span" in text
    assert "désactivé : aucune tâche ne tourne depuis le portail" in text
    assert "envoyés : 0, annulés : 0" in text


def test_scheduler_page_refused_to_agents(app, client_as):
    refused = client_as("sejour").get("/scheduler/")

    assert refused.status_code == 403


def test_status_command_prints_jobs(app, app_context):
    SchedulerRunner(app, holder="status-test").run_pass(NOW)

    result = app.test_cli_runner().invoke(args=["scheduler", "status"])

    assert result.exit_code == 0
    assert "lease: status-test" in result.output
    assert "job send_reminders:" in result.output


def test_early_pass_runs_jobs_due(app):
    runner = SchedulerRunner(app, holder="early-pass", interval_seconds=60)
    first = runner.run_pass(NOW)
    # APScheduler's next trigger comes a few milliseconds before the slot set by the first pass.
    second = runner.run_pass(NOW + timedelta(seconds=59, milliseconds=990))

    assert "deliver_email" in first.ran
    assert "deliver_email" in second.ran

"""Reminders: plan them from the mail type's plan, and send those that are due.

Every mail with a due date gets the steps of its type's reminder plan and a
"late" notice, sent on the first working day after the due date. Each is a
``Reminder`` row whose due time is ``REMINDER_HOUR`` (Europe/Paris) of its
day. Days are counted in working days of the handling department's calendar.

The sweep (``send_due_reminders``) claims due rows in batches with one
conditional UPDATE (``state = 'pending'``) and processes only the rows that
UPDATE changed. The claim commits together with the notifications and
history entries, so a reminder is sent once even when two runners sweep at
the same time. A batch that fails is redone one reminder per transaction, so
one failing reminder neither blocks nor duplicates the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import delete, insert, select, union_all, update
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.dml import Update

from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.configuration.specs import MailTypeSpec, ReminderPlanSpec
from app.core.db import InsertBatch, run_in_write_transaction
from app.core.types import utcnow
from app.deadlines.calendar import BusinessCalendar, get_calendar
from app.distribution.models import COPY, DistributionEntry
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.notifications.operations import NotificationCache, notify
from app.organisation.models import Department, UserDepartment
from app.reminders.models import Reminder

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")
# Due rows read per query by the sweep.
SWEEP_BATCH_SIZE = 500
# Reminders claimed and sent per write transaction. A larger batch holds the
# SQLite write lock longer, and a failing batch is redone one by one.
SWEEP_TRANSACTION_SIZE = 100


@dataclass(frozen=True)
class PlannedReminder:
    """A reminder before it is stored: which step, which day, to which roles."""

    kind: str
    step_index: int | None
    remind_on: date
    recipient_roles: tuple[str, ...]
    when: str


def _step_day(due_date: date, when: str, working_days: int, calendar: BusinessCalendar) -> date:
    if when == "before":
        return calendar.add_working_days(due_date, -working_days)
    if when == "after":
        return calendar.add_working_days(due_date, working_days)
    # On the due date, or on the last working day before it when it is not a working day.
    if calendar.is_working_day(due_date):
        return due_date
    return calendar.add_working_days(due_date, -1)


def plan_reminders(due_date: date, plan: ReminderPlanSpec | None, calendar: BusinessCalendar) -> list[PlannedReminder]:
    """Compute the reminders of a mail due on ``due_date``: the plan's steps, then the late notice.

    Pure: reads no database. The late notice is for the first working day after the due date.
    """
    planned = []
    if plan is not None:
        for index, step in enumerate(plan.steps):
            day = _step_day(due_date, step.when, step.working_days, calendar)
            planned.append(PlannedReminder("step", index, day, tuple(step.recipients), step.when))
    late_day = calendar.add_working_days(due_date, 1)
    planned.append(PlannedReminder("late", None, late_day, ("assignee",), "after"))
    return planned


def due_time(day: date, hour: int | None = None) -> datetime:
    """Return ``hour`` o'clock (REMINDER_HOUR by default) of ``day`` in Europe/Paris, as an aware datetime."""
    if hour is None:
        hour = int(current_app.config["REMINDER_HOUR"])
    return datetime.combine(day, time(hour), tzinfo=PARIS)


def today_in_paris(now: datetime) -> date:
    return now.astimezone(PARIS).date()


# Built once: registration runs it for every mail that has a due date.
_INSERT_REMINDERS = insert(Reminder.__table__)


def schedule_reminders(
    mail: Mail, spec: MailTypeSpec | None, configuration: Configuration, now: datetime, new_mail: bool = False,
    batch: InsertBatch | None = None,
) -> int:
    """Replace the mail's pending reminders by those of its current due date, in the caller's transaction.

    Reminders already sent are kept. A step placed before today is skipped
    when it comes before or on the due date, because warning of a date
    already passed is noise. Steps after the due date and the late notice are
    kept even when their day has passed, and the next sweep sends them.
    The rows are inserted by one executemany statement, or by ``batch``, and their number is returned.
    """
    # A mail registered in this transaction has no reminder to replace.
    if not new_mail:
        db.session.execute(delete(Reminder).where(Reminder.mail_id == mail.id, Reminder.state == "pending"))
    if mail.due_date is None or mail.status in configuration.closed_statuses:
        return 0

    plan = configuration.reminder_plans.get(spec.reminder_plan) if spec and spec.reminder_plan else None
    department = _handling_department(mail)
    calendar = get_calendar(department.calendar)
    today = today_in_paris(now)
    rows = []
    for planned in plan_reminders(mail.due_date, plan, calendar):
        if planned.when != "after" and planned.remind_on < today:
            continue
        rows.append(_reminder_values(mail, plan, planned, occurrence=1))
    if rows and batch is not None:
        batch.add(Reminder.__table__, rows)
    elif rows:
        # The table, not the entity: an ORM bulk insert would split the rows by which columns are null.
        db.session.execute(_INSERT_REMINDERS, rows)
    return len(rows)


def _reminder_values(mail: Mail, plan: ReminderPlanSpec | None, planned: PlannedReminder, occurrence: int) -> dict[str, Any]:
    assert mail.due_date is not None
    return {
        "mail_id": mail.id,
        "kind": planned.kind,
        "plan_id": plan.id if plan is not None and planned.kind == "step" else None,
        "step_index": planned.step_index,
        "occurrence": occurrence,
        "due_date": mail.due_date,
        "remind_on": planned.remind_on,
        "due_at": due_time(planned.remind_on),
        "recipient_roles": list(planned.recipient_roles),
        "state": "pending",
        "outcome": {},
    }


# --- Recipients -------------------------------------------------------------------------


def _handling_department(mail: Mail) -> Department:
    # Read by id: routing may have changed the id after the relationship was loaded.
    department = db.session.get(Department, mail.handling_department_id)
    assert department is not None
    return department


def _department_ids_upwards(path: str) -> list[int]:
    """Return the ids of a department's materialised ``path``, from the department up to the top level."""
    return [int(part) for part in reversed(path.strip("/").split("/")) if part]


@dataclass(frozen=True)
class Organisation:
    """Department paths, calendars and heads, read once and then used for many mails."""

    paths: dict[int, str]
    calendars: dict[int, str]
    # Active heads of each department, by user id.
    heads: dict[int, list[int]]

    @classmethod
    def load(cls) -> Organisation:
        """Read every department and every active head, in two queries."""
        paths: dict[int, str] = {}
        calendars: dict[int, str] = {}
        for department_id, path, calendar in db.session.execute(select(Department.id, Department.path, Department.calendar)):
            paths[department_id] = path
            calendars[department_id] = calendar
        rows = db.session.execute(
            select(UserDepartment.department_id, UserDepartment.user_id)
            .join(User, User.id == UserDepartment.user_id)
            .where(UserDepartment.is_head.is_(True), User.active.is_(True))
            .order_by(UserDepartment.user_id)
        )
        heads: dict[int, list[int]] = {}
        for department_id, user_id in rows:
            heads.setdefault(department_id, []).append(user_id)
        return cls(paths, calendars, heads)

    def calendar(self, department_id: int) -> BusinessCalendar:
        return get_calendar(self.calendars[department_id])

    def department_heads(self, department_id: int) -> list[int]:
        """Return the heads of the department, or of the nearest department above it that has one."""
        for upper_id in _department_ids_upwards(self.paths[department_id]):
            if self.heads.get(upper_id):
                return list(self.heads[upper_id])
        return []

    def director_ids(self, department_id: int) -> list[int]:
        """Return the heads of the top-level department above the department (the director)."""
        upwards = _department_ids_upwards(self.paths[department_id])
        return list(self.heads.get(upwards[-1], [])) if upwards else []


def copy_recipients(mail_ids: Sequence[int]) -> dict[int, list[int]]:
    """Return, for each mail, the active users it reached in copy, in one query.

    These are the users in copy themselves and the members of the departments
    in copy. Members of a department's sub-departments are left out, because
    the visibility rule does not show them a copy sent to a department above
    their own. Mails without a copy are absent from the result.
    """
    if not mail_ids:
        return {}
    ids = sorted(set(mail_ids))
    users_in_copy = select(DistributionEntry.mail_id, DistributionEntry.user_id.label("user_id")).where(
        DistributionEntry.mail_id.in_(ids), DistributionEntry.role == COPY, DistributionEntry.user_id.is_not(None)
    )
    members_in_copy = (
        select(DistributionEntry.mail_id, UserDepartment.user_id.label("user_id"))
        .join(UserDepartment, UserDepartment.department_id == DistributionEntry.department_id)
        .where(DistributionEntry.mail_id.in_(ids), DistributionEntry.role == COPY)
    )
    targets = union_all(users_in_copy, members_in_copy).subquery()
    rows = db.session.execute(
        select(targets.c.mail_id, targets.c.user_id)
        .join(User, User.id == targets.c.user_id)
        .where(User.active.is_(True))
        .distinct()
        .order_by(targets.c.mail_id, targets.c.user_id)
    )
    found: dict[int, list[int]] = {}
    for mail_id, user_id in rows:
        found.setdefault(mail_id, []).append(user_id)
    return found


def resolve_recipients(
    mail: Mail, roles: Sequence[str], organisation: Organisation | None = None,
    copies: dict[int, list[int]] | None = None,
) -> list[int]:
    """Turn recipient roles into user ids, falling back to the department heads when no role resolves.

    The sweep passes the ``organisation`` it read once, and the ``copies`` of
    its batch read by copy_recipients(); without them, this reads the
    departments, and the mail's copies when a role requests them.
    """
    organisation = organisation or Organisation.load()
    department_id = mail.handling_department_id
    found: list[int] = []
    for role in roles:
        if role == "assignee" and mail.assignee_id is not None:
            found.append(mail.assignee_id)
        elif role == "department_head":
            found.extend(organisation.department_heads(department_id))
        elif role == "director":
            found.extend(organisation.director_ids(department_id))
        elif role == "copies":
            if copies is None:
                copies = copy_recipients([mail.id])
            found.extend(copies.get(mail.id, []))
    if not found:
        found = organisation.department_heads(department_id)
    return list(dict.fromkeys(found))


# --- The sweep --------------------------------------------------------------------------


@dataclass
class SweepSummary:
    sent: int = 0
    cancelled: int = 0
    # Ids of the reminders that raised an error. They stay pending for the next sweep.
    failed: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "cancelled": self.cancelled}

    def count(self, outcomes: dict[int, str]) -> None:
        self.sent += sum(1 for outcome in outcomes.values() if outcome == "sent")
        self.cancelled += sum(1 for outcome in outcomes.values() if outcome == "cancelled")


class ReminderSweepFailed(Exception):
    """Some reminders raised an error; the others of the sweep were sent and committed."""

    def __init__(self, summary: SweepSummary):
        self.summary = summary
        first_ids = ", ".join(str(reminder_id) for reminder_id in summary.failed[:20])
        super().__init__(
            f"{len(summary.failed)} reminders failed and stay pending (first ids: {first_ids}). "
            f"{summary.sent} sent, {summary.cancelled} cancelled. The log has each error."
        )


@dataclass
class _SweepContext:
    """State of one sweep: the time, and the data it reads once and reuses in each transaction."""

    now: datetime
    configuration: Configuration
    organisation: Organisation
    notifications: NotificationCache


def due_reminder_ids(now: datetime, limit: int = SWEEP_BATCH_SIZE, excluded: Sequence[int] = ()) -> list[int]:
    """Return ids of pending reminders due at ``now``, earliest first, leaving out ``excluded``.

    The query reads the partial index of pending rows in due-time order and
    stops after the due ones. Ordering by id instead makes SQLite walk the
    primary key over every row, sent ones included.
    """
    statement = select(Reminder.id).where(Reminder.state == "pending", Reminder.due_at <= now)
    if excluded:
        statement = statement.where(Reminder.id.not_in(list(excluded)))
    return list(db.session.execute(statement.order_by(Reminder.due_at).limit(limit)).scalars())


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def send_due_reminders(now: datetime | None = None, transaction_size: int = SWEEP_TRANSACTION_SIZE) -> SweepSummary:
    """Send every reminder due at ``now``, each once, ``transaction_size`` reminders per transaction.

    Each batch leaves the pending state (sent, cancelled, or taken by another
    runner), so the next query returns the next batch. When a batch raises,
    its transaction rolls back and its reminders are redone one per
    transaction. A reminder that still raises is logged, stays pending and is
    left out of the rest of the sweep. Raises ReminderSweepFailed at the end
    when some reminders failed, so the scheduler records the job as failed.
    """
    now = now or utcnow()
    configuration = current_configuration()
    sweep = _SweepContext(now, configuration, Organisation.load(), NotificationCache(configuration))
    summary = SweepSummary()
    while True:
        ids = due_reminder_ids(now, excluded=summary.failed)
        if not ids:
            break
        for batch in _chunks(ids, transaction_size):
            _send_batch_or_each(batch, sweep, summary)
    if summary.sent or summary.cancelled:
        log.info("reminder sweep: %s sent, %s cancelled", summary.sent, summary.cancelled)
    if summary.failed:
        raise ReminderSweepFailed(summary)
    return summary


def _send_batch_or_each(batch: list[int], sweep: _SweepContext, summary: SweepSummary) -> None:
    description = f"send reminders {batch[0]} to {batch[-1]}" if len(batch) > 1 else f"send reminder {batch[0]}"
    try:
        summary.count(run_in_write_transaction(partial(_send_batch, batch, sweep), description))
        return
    except Exception:  # the batch is redone one by one below, and each error is logged with its reminder id
        if len(batch) == 1:
            log.exception("reminder %s failed and stays pending for the next sweep", batch[0])
            summary.failed.append(batch[0])
            return
        log.warning("reminder batch %s to %s failed, so its %s reminders are sent one by one", batch[0], batch[-1], len(batch))
    for reminder_id in batch:
        _send_batch_or_each([reminder_id], sweep, summary)


def claim_statement(reminder_ids: list[int], now: datetime) -> Update:
    """Build the UPDATE that marks the pending rows among ``reminder_ids`` sent and returns their ids.

    Rows another runner claimed first are no longer pending, so they are not
    returned. On PostgreSQL the rows another runner has locked are skipped
    rather than waited for (FOR UPDATE SKIP LOCKED), so two runners claiming
    overlapping batches neither wait for nor deadlock each other. A skipped
    row that stays pending comes back in the next due-row query. SQLite has
    one writer at a time, and SQLAlchemy leaves FOR UPDATE out there.
    """
    lockable = (
        select(Reminder.id)
        .where(Reminder.id.in_(reminder_ids), Reminder.state == "pending")
        .with_for_update(skip_locked=True)
    )
    return (
        update(Reminder)
        .where(Reminder.id.in_(lockable.scalar_subquery()), Reminder.state == "pending")
        .values(state="sent", sent_at=now)
        .returning(Reminder.id)
    )


def _claim(reminder_ids: list[int], now: datetime) -> list[int]:
    """Claim the pending rows among ``reminder_ids`` and return the ids this runner claimed, sorted."""
    claimed = db.session.execute(
        claim_statement(reminder_ids, now), execution_options={"synchronize_session": False}
    ).scalars()
    return sorted(claimed)


def _send_batch(reminder_ids: list[int], sweep: _SweepContext) -> dict[int, str]:
    """Claim and send the reminders of ``reminder_ids`` in the caller's transaction.

    Returns the outcome ("sent" or "cancelled") of each reminder this call claimed.
    """
    claimed = _claim(reminder_ids, sweep.now)
    if not claimed:
        return {}
    rows = list(
        db.session.execute(
            select(Reminder)
            .where(Reminder.id.in_(claimed))
            .options(joinedload(Reminder.mail))
            .order_by(Reminder.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )
    if any(row.mail.handling_department_id not in sweep.organisation.paths for row in rows):
        # A department was created after the sweep read them.
        sweep.organisation = Organisation.load()
    closed = sweep.configuration.closed_statuses
    today = sweep.now.astimezone(PARIS).date()
    # A reminder "before" or "on" the due date that a sweep reaches only after that date (the
    # scheduler was stopped) would announce the date as still ahead: the late notice covers it.
    overtaken = {row.id for row in rows if _overtaken(row, sweep.configuration, today)}
    to_send = [
        row for row in rows
        if row.mail.status not in closed and row.mail.due_date == row.due_date and row.id not in overtaken
    ]
    copies = copy_recipients([row.mail_id for row in to_send if "copies" in row.recipient_roles])
    recipients = {
        row.id: resolve_recipients(row.mail, row.recipient_roles, sweep.organisation, copies) for row in to_send
    }
    sweep.notifications.load(user_id for user_ids in recipients.values() for user_id in user_ids)

    outcomes = {}
    history: list[dict[str, Any]] = []
    repetitions: list[dict[str, Any]] = []
    for row in rows:
        if row.id in recipients:
            history.append(_send(row, recipients[row.id], sweep))
            repetition = _repetition(row.mail, row, sweep)
            if repetition is not None:
                repetitions.append(repetition)
            outcomes[row.id] = "sent"
        else:
            row.state = "cancelled"
            if row.mail.status in closed:
                row.outcome = {"reason": "closed"}
            elif row.mail.due_date != row.due_date:
                row.outcome = {"reason": "due_date_changed"}
            else:
                row.outcome = {"reason": "due_date_passed"}
            outcomes[row.id] = "cancelled"
    # One executemany each. ORM objects would cost one INSERT per row on SQLite, because
    # SQLAlchemy fetches generated ids there one row at a time.
    if history:
        db.session.execute(insert(HistoryEntry), history)
    if repetitions:
        db.session.execute(insert(Reminder), repetitions)
    return outcomes


def _send(reminder: Reminder, recipients: list[int], sweep: _SweepContext) -> dict[str, Any]:
    """Notify the reminder's recipients and return the values of its history entry."""
    mail = reminder.mail
    configuration = sweep.configuration
    event = "mail_late" if reminder.kind == "late" else "reminder_due"
    when = "after" if reminder.kind == "late" else _step_when(configuration, reminder)
    due_date = mail.due_date.isoformat() if mail.due_date else None
    params = {"due_date": due_date, "when": when, "occurrence": reminder.occurrence}
    notified = notify(event, mail, recipients, actor=None, params=params, now=sweep.now, cache=sweep.notifications)
    notified_ids = [row.user_id for row in notified]
    reminder.outcome = {"notified": notified_ids}
    return {
        "mail_id": mail.id,
        "at": sweep.now,
        "actor_id": None,
        "on_behalf_of_id": None,
        "event": "late_notice_sent" if reminder.kind == "late" else "reminder_sent",
        "schema_version": configuration.version,
        "details": {
            "reminder_id": reminder.id,
            "plan": reminder.plan_id,
            "step": reminder.step_index,
            "occurrence": reminder.occurrence,
            "due_date": due_date,
            "recipients": notified_ids,
        },
    }


def _overtaken(reminder: Reminder, configuration: Configuration, today: date) -> bool:
    """Tell whether a step reminder announces a date already reached: "before" from the due date on, "on" after it.

    A step the plan no longer has is left to be sent, as _step_when() describes it.
    """
    plan = configuration.reminder_plans.get(reminder.plan_id or "")
    if reminder.kind != "step" or plan is None or reminder.step_index is None or reminder.step_index >= len(plan.steps):
        return False
    when = plan.steps[reminder.step_index].when
    return (when == "before" and reminder.due_date <= today) or (when == "on" and reminder.due_date < today)


def _step_when(configuration: Configuration, reminder: Reminder) -> str:
    plan = configuration.reminder_plans.get(reminder.plan_id or "")
    if plan is None or reminder.step_index is None or reminder.step_index >= len(plan.steps):
        return "on"
    return plan.steps[reminder.step_index].when


def _repetition(mail: Mail, reminder: Reminder, sweep: _SweepContext) -> dict[str, Any] | None:
    """Return the values of the step's next occurrence, or None when the step does not repeat."""
    plan = sweep.configuration.reminder_plans.get(reminder.plan_id or "")
    if reminder.kind != "step" or plan is None or reminder.step_index is None or reminder.step_index >= len(plan.steps):
        return None
    step = plan.steps[reminder.step_index]
    if step.repeat_every is None:
        return None
    calendar = sweep.organisation.calendar(mail.handling_department_id)
    # Counted from today when the reminder was sent late, so that downtime does not cause a burst.
    start = max(reminder.remind_on, today_in_paris(sweep.now))
    next_day = calendar.add_working_days(start, step.repeat_every)
    planned = PlannedReminder("step", reminder.step_index, next_day, tuple(step.recipients), step.when)
    return _reminder_values(mail, plan, planned, occurrence=reminder.occurrence + 1)


def reminders_of(mail_id: int) -> list[Reminder]:
    return list(
        db.session.execute(select(Reminder).where(Reminder.mail_id == mail_id).order_by(Reminder.due_at, Reminder.id)).scalars()
    )

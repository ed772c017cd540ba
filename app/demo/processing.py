"""Demo mail processed as a prefecture processes it: qualified, then closed, mostly before its due date.

A register where every mail stays new would show no mail processed in the
statistics, most of it late, and a reminder for each at the first start of the
scheduler. The actions run through perform_action() at
past moments, so the history, the statistics counters and the reminders are
those that agents processing the mail on those days would have left.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from app.actions.operations import ActionInput, perform_action
from app.configuration.operations import current_configuration
from app.extensions import db
from app.mail.models import Mail
from app.mail.operations import PARIS
from app.organisation.context import UserContext

# Share of the mail closed by its age in days on the day of the load: (minimum age, share).
CLOSED_SHARE_BY_AGE = ((45, 0.9), (15, 0.6), (5, 0.3), (0, 0.05))
# Share of the closed mail closed on or before its due date.
ON_TIME_SHARE = 0.85
# The values an agent types when the close action requires a field the mail lacks.
CLOSING_VALUES = {
    "nationality": "marocaine",
    "foreign_national_number": "7501234567",
    "association_siret": "78467169500087",
}


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=PARIS)


def _weekday(day: date, earliest: date, latest: date) -> date:
    """Return the first Monday to Friday from ``day`` up to ``latest``, else the last one back to ``earliest``.

    Returns ``day`` itself when no weekday lies between ``earliest`` and ``latest``.
    """
    for candidate in (day + timedelta(days=step) for step in range((latest - day).days + 1)):
        if candidate.weekday() < 5:
            return candidate
    for candidate in (day - timedelta(days=step) for step in range((day - earliest).days + 1)):
        if candidate.weekday() < 5:
            return candidate
    return day


def _closing_day(rng: random.Random, start: date, due: date | None, today: date) -> date:
    """Return a day between ``start`` and ``today``: on or before ``due`` for most mail, after it for the rest."""
    if due is not None and due < start:
        due = start
    on_time = due is None or rng.random() < ON_TIME_SHARE
    if on_time:
        last = min(due or today, today)
        return start + timedelta(days=rng.randint(0, max(0, (last - start).days)))
    first = due + timedelta(days=1)
    if first > today:
        return today
    return first + timedelta(days=rng.randint(0, min(20, (today - first).days)))


def process_demo_mail(processors: list[UserContext], administrator: UserContext, mail_ids: list[int],
                      today: date, seed: int, latest: datetime | None = None) -> int:
    """Qualify and close a share of ``mail_ids`` that grows with their age; return how many were closed.

    Each mail is processed by its assignee when one of ``processors`` is, else
    by the first of them whose departments include its handling department,
    else by ``administrator``. No action is dated after ``latest``.
    """
    rng = random.Random(seed)
    configuration = current_configuration()
    by_id = {processor.user_id: processor for processor in processors}
    rows = db.session.execute(
        select(Mail.id, Mail.arrival_date, Mail.due_date, Mail.handling_department_id, Mail.assignee_id,
               Mail.mail_type, Mail.fields)
        .where(Mail.id.in_(mail_ids))
        .order_by(Mail.id)
    ).all()
    db.session.commit()
    closed = 0
    for row in rows:
        age = (today - row.arrival_date).days
        share = next(share for minimum, share in CLOSED_SHARE_BY_AGE if age >= minimum)
        if rng.random() >= share:
            continue
        actor = by_id.get(row.assignee_id) or next(
            (processor for processor in processors if row.handling_department_id in processor.scope_department_ids),
            administrator,
        )
        # Agents work Monday to Friday, and the demo registers each mail at noon on its arrival date.
        qualified_on = _weekday(row.arrival_date + timedelta(days=rng.randint(0, min(3, age))), row.arrival_date, today)
        qualified_at = _at(qualified_on, 14 if qualified_on == row.arrival_date else 10)
        perform_action(actor, row.id, "qualify", ActionInput(), now=min(qualified_at, latest or qualified_at))
        closed_on = _weekday(_closing_day(rng, qualified_on, row.due_date, today), qualified_on, today)
        closed_at = _at(closed_on, 17)
        action = configuration.actions["close"]
        required = next((item.fields for item in action.required_fields if item.mail_type == row.mail_type), [])
        values = {name: CLOSING_VALUES[name] for name in required if not row.fields.get(name) and name in CLOSING_VALUES}
        perform_action(actor, row.id, "close", ActionInput(fields=values), now=min(closed_at, latest or closed_at))
        closed += 1
    return closed

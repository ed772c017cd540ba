"""Declare and cancel absences; find whom a delegate acts for today.

While an absence runs (first and last day included, Europe/Paris dates), the
delegate sees what the absent agent sees and may act on it; history records
such actions as "delegate on behalf of absent agent".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import g, has_request_context
from flask_appbuilder.security.sqla.models import User
from flask_babel import lazy_gettext as _l
from sqlalchemy import BindParameter, Select, and_, select

from app.absences.models import Absence
from app.core.db import run_in_write_transaction
from app.core.errors import NotFound, PermissionDenied, ValidationFailed
from app.extensions import db
from app.organisation.context import UserContext, build_user_context
from app.organisation.models import UserDepartment

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")

# Longest absence one declaration may cover; a longer one is a typing error in the year.
MAX_ABSENCE_DAYS = 366


def _today() -> date:
    from app.mail.operations import today_in_paris

    return today_in_paris()


def active_delegators_statement(delegate_id: int | BindParameter[int], day: date | BindParameter[date]) -> Select:
    """Return the query of the users absent on ``day`` who chose ``delegate_id`` as their delegate.

    Either value may be a bound parameter, for a statement built once and run with many values.
    """
    return (
        select(Absence.user_id)
        .where(Absence.delegate_id == delegate_id, Absence.cancelled.is_(False))
        .where(and_(Absence.starts_on <= day, Absence.ends_on >= day))
    )


def active_delegator_ids(delegate_id: int, today: date | None = None) -> list[int]:
    """Return the ids of the users absent on ``today`` who chose ``delegate_id`` as their delegate."""
    day = today or _today()
    rows = db.session.execute(active_delegators_statement(delegate_id, day).order_by(Absence.user_id)).scalars()
    return list(dict.fromkeys(rows))


def delegator_contexts(user: UserContext) -> list[UserContext]:
    """Return the contexts of the absent agents ``user`` stands in for today, once per request."""
    cache = getattr(g, "estafette_delegators", None) if has_request_context() else None
    if cache is not None and user.user_id in cache:
        return cache[user.user_id]
    # build_user_context() reads them with the memberships, in the statement every request runs.
    ids = list(user.delegator_ids) if user.delegator_ids is not None else active_delegator_ids(user.user_id)
    contexts = []
    if ids:
        users = db.session.execute(select(User).where(User.id.in_(ids), User.active.is_(True))).scalars()
        contexts = [build_user_context(row) for row in users]
    if has_request_context():
        if cache is None:
            cache = g.estafette_delegators = {}
        cache[user.user_id] = contexts
    return contexts


def delegator_context(user: UserContext, absent_user_id: int) -> UserContext:
    """Return the context of ``absent_user_id`` if ``user`` is their delegate today, else raise NotFound."""
    for context in delegator_contexts(user):
        if context.user_id == absent_user_id:
            return context
    raise NotFound()


def _headed_scope(actor: UserContext) -> frozenset[int]:
    """Return the departments the actor heads (``is_head`` membership) with all their sub-departments."""
    from app.organisation.context import department_scope

    headed = db.session.execute(
        select(UserDepartment.department_id).where(UserDepartment.user_id == actor.user_id, UserDepartment.is_head.is_(True))
    ).scalars()
    return department_scope(frozenset(headed))


def managed_user_ids(actor: UserContext) -> set[int]:
    """Return the ids of the agents whose absences the actor may see and declare, the actor included.

    A head of department manages the agents who belong only to departments
    they head (or below) and whose permissions are all theirs too: otherwise a
    head could lend themselves, as a delegate, rights they do not have.
    """
    scope = _headed_scope(actor)
    if not scope:
        return {actor.user_id}
    rows = db.session.execute(
        select(UserDepartment.user_id, UserDepartment.department_id).where(
            UserDepartment.user_id.in_(select(UserDepartment.user_id).where(UserDepartment.department_id.in_(sorted(scope))))
        )
    ).all()
    departments: dict[int, set[int]] = {}
    for user_id, department_id in rows:
        departments.setdefault(user_id, set()).add(department_id)
    managed = {actor.user_id}
    for user_id, member_of in departments.items():
        if user_id == actor.user_id or not member_of <= scope:
            continue
        agent = db.session.get(User, user_id)
        if agent is not None and agent.active and build_user_context(agent).permissions <= actor.permissions:
            managed.add(user_id)
    return managed


def absences_of(actor: UserContext, managed: set[int] | None = None) -> list[Absence]:
    """Return the current and future absences of the actor, of those they stand in for and of the agents they manage.

    ``managed`` spares computing managed_user_ids() again when the caller has it.
    """
    user_ids = sorted(managed if managed is not None else managed_user_ids(actor))
    statement = (
        select(Absence)
        .where(Absence.user_id.in_(user_ids) | (Absence.delegate_id == actor.user_id))
        .where(Absence.cancelled.is_(False), Absence.ends_on >= _today())
        .order_by(Absence.starts_on, Absence.id)
    )
    return list(db.session.execute(statement).scalars())


def may_declare_for(actor: UserContext, user_id: int) -> bool:
    """Tell whether the actor may declare or cancel an absence of user ``user_id``: their own, an agent they manage, or any for an administrator."""
    return user_id == actor.user_id or actor.can("administer") or user_id in managed_user_ids(actor)


def declare_absence(
    actor: UserContext, starts_on: date | None, ends_on: date | None, delegate_id: int | None,
    absent_user_id: int | None = None,
) -> Absence:
    """Record an absence of the actor, or of an agent a head of department manages, with its delegate."""
    user_id = absent_user_id or actor.user_id
    if not may_declare_for(actor, user_id):
        raise PermissionDenied()
    errors: dict[str, list[str]] = {}
    if starts_on is None:
        errors["starts_on"] = [str(_l("Give the first day of the absence."))]
    if ends_on is None:
        errors["ends_on"] = [str(_l("Give the last day of the absence."))]
    if starts_on and ends_on and ends_on < starts_on:
        errors["ends_on"] = [str(_l("The last day is before the first day."))]
    elif starts_on and ends_on and (ends_on - starts_on).days > MAX_ABSENCE_DAYS:
        errors["ends_on"] = [str(_l("An absence lasts at most one year: check the dates."))]
    if ends_on and ends_on < _today():
        errors.setdefault("ends_on", []).append(str(_l("The absence is already over.")))
    delegate = db.session.get(User, delegate_id) if delegate_id else None
    if delegate is None or not delegate.active:
        errors["delegate_id"] = [str(_l("Choose the colleague who stands in for you."))]
    elif delegate.id == user_id:
        errors["delegate_id"] = [str(_l("The delegate must be someone else."))]
    elif user_id != actor.user_id and delegate.id == actor.user_id and not actor.can("administer"):
        # Standing in for an agent gives the delegate that agent's rights: a head names someone else.
        errors["delegate_id"] = [str(_l("You cannot be the delegate of an absence you declare for someone else."))]
    if errors:
        raise ValidationFailed(errors)
    assert starts_on is not None and ends_on is not None and delegate is not None

    overlapping = db.session.execute(
        select(Absence.id).where(
            Absence.user_id == user_id, Absence.cancelled.is_(False),
            Absence.starts_on <= ends_on, Absence.ends_on >= starts_on,
        )
    ).first()
    if overlapping is not None:
        raise ValidationFailed({"starts_on": [str(_l("Another absence already covers part of these days."))]})

    def write() -> Absence:
        from app.actions.notifications import queue_notification

        absence = Absence(user_id=user_id, delegate_id=delegate.id, starts_on=starts_on, ends_on=ends_on)
        db.session.add(absence)
        db.session.flush()
        queue_notification("delegation_started", None, [delegate.id], actor, {"absent_user_id": user_id,
                           "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat()})
        return absence

    absence = run_in_write_transaction(write, "declare absence")
    log.info("absence %s of user %s declared by %s, delegate %s", absence.id, user_id, actor.display_name, delegate.username)
    return absence


def cancel_absence(actor: UserContext, absence_id: int) -> None:
    """Cancel an absence of the actor, or of an agent a head of department manages."""

    def write() -> None:
        absence = db.session.get(Absence, absence_id)
        if absence is None or not may_declare_for(actor, absence.user_id):
            raise NotFound()
        absence.cancelled = True

    run_in_write_transaction(write, "cancel absence")
    log.info("absence %s cancelled by %s", absence_id, actor.display_name)


# Days after the end of an absence during which the home page sums up what the delegate did.
RETURN_SUMMARY_DAYS = 7
# Mails named in one summary; the count covers them all.
RETURN_SUMMARY_MAILS = 10


@dataclass(frozen=True)
class DelegationSummary:
    """Summary of the actions taken on an agent's behalf during one absence that has just ended."""

    absence: Absence
    actions: int
    # (mail id, registration number) of the mails acted on, at most RETURN_SUMMARY_MAILS, latest first.
    mails: list[tuple[int, str]]
    # True when more mails were acted on than ``mails`` names.
    more: bool = False


def return_summaries(user: UserContext, today: date | None = None) -> list[DelegationSummary]:
    """Return, for each absence of ``user`` ended in the last RETURN_SUMMARY_DAYS days, what was done on their behalf."""
    from app.mail.models import HistoryEntry, Mail

    today = today or _today()
    ended = list(db.session.execute(
        select(Absence).where(
            Absence.user_id == user.user_id, Absence.cancelled.is_(False),
            Absence.ends_on < today, Absence.ends_on >= today - timedelta(days=RETURN_SUMMARY_DAYS),
        ).order_by(Absence.starts_on)
    ).scalars())
    summaries = []
    for absence in ended:
        start = datetime.combine(absence.starts_on, time.min, PARIS)
        end = datetime.combine(absence.ends_on + timedelta(days=1), time.min, PARIS)
        rows = db.session.execute(
            select(HistoryEntry.mail_id, Mail.chrono)
            .join(Mail, Mail.id == HistoryEntry.mail_id)
            .where(HistoryEntry.on_behalf_of_id == user.user_id, HistoryEntry.at >= start, HistoryEntry.at < end)
            .order_by(HistoryEntry.at.desc())
        ).all()
        if not rows:
            continue
        mails: dict[int, str] = {}
        for mail_id, chrono in rows:
            mails.setdefault(mail_id, chrono)
        named = list(mails.items())
        summaries.append(DelegationSummary(
            absence, len(rows), named[:RETURN_SUMMARY_MAILS], more=len(named) > RETURN_SUMMARY_MAILS,
        ))
    return summaries

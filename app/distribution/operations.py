"""Changes to a mail's distribution list, made inside the caller's transaction.

These helpers never open a transaction of their own: registration and the
actions call them between their checks and their history entry, so a copy or
an opinion request exists exactly when the change that caused it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import and_, or_, select

from app.configuration.loader import Configuration
from app.configuration.specs import DistributionListSpec
from app.core.types import utcnow
from app.deadlines.calendar import get_calendar
from app.distribution.models import COPY, OPINION, DistributionEntry, ReadMark
from app.extensions import db
from app.mail.models import Mail
from app.organisation.models import Department, UserDepartment


@dataclass(frozen=True)
class OpinionTarget:
    user_id: int | None
    department_id: int | None
    due_date: date | None


@dataclass
class DistributionTargets:
    """The copy targets and pending opinion targets of one mail, as ("user" or "department", id) pairs.

    Registration passes an empty one for the mail it has just inserted, and
    add_copies and add_opinion_requests record in it what they add, so they
    need not read the mail's entries back.
    """

    copies: set[tuple[str, int | None]] = field(default_factory=set)
    pending_opinions: set[tuple[str, int | None]] = field(default_factory=set)


def user_ids_by_username(usernames: list[str]) -> dict[str, int]:
    """Return the ids of the active users among ``usernames``; unknown names are left out."""
    if not usernames:
        return {}
    rows = db.session.execute(
        select(User.username, User.id).where(User.username.in_(usernames), User.active.is_(True))
    )
    return {username: user_id for username, user_id in rows}


def department_ids_by_code(codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    rows = db.session.execute(
        select(Department.code, Department.id).where(Department.code.in_(codes), Department.active.is_(True))
    )
    return {code: department_id for code, department_id in rows}


def department_model(configuration: Configuration, department_code: str | None) -> DistributionListSpec | None:
    """Return the distribution-list model that applies when ``department_code`` handles a mail."""
    if department_code is None:
        return None
    return next(
        (model for model in configuration.distribution_lists.values() if model.department == department_code), None
    )


def is_member_of_tree(user_id: int, department: Department) -> bool:
    """Return True when the user belongs to ``department`` or one of its sub-departments."""
    found = db.session.execute(
        select(UserDepartment.id)
        .join(Department, Department.id == UserDepartment.department_id)
        .where(UserDepartment.user_id == user_id, Department.path.startswith(department.path))
        .limit(1)
    ).first()
    return found is not None


def opinion_due_date(working_days: int, today: date, zone: str = "metropole") -> date:
    return get_calendar(zone).add_working_days(today, working_days)


def add_copies(
    mail: Mail, user_ids: list[int], department_ids: list[int], requested_by_id: int | None,
    now: datetime | None = None, existing: DistributionTargets | None = None,
) -> list[DistributionEntry]:
    """Add copies for information and return the new entries.

    The assignee, the handling department and targets already in copy are
    skipped. Those already in copy are read from the database unless
    ``existing`` holds them, in which case the new copies are added to it.
    """
    in_copy = existing.copies if existing is not None else _existing_targets(mail.id, COPY)
    added = []
    for user_id in dict.fromkeys(user_ids):
        if user_id == mail.assignee_id or ("user", user_id) in in_copy:
            continue
        in_copy.add(("user", user_id))
        added.append(DistributionEntry(mail_id=mail.id, role=COPY, user_id=user_id, requested_by_id=requested_by_id,
                                       requested_at=now or utcnow()))
    for department_id in dict.fromkeys(department_ids):
        if department_id == mail.handling_department_id or ("department", department_id) in in_copy:
            continue
        in_copy.add(("department", department_id))
        added.append(DistributionEntry(mail_id=mail.id, role=COPY, department_id=department_id,
                                       requested_by_id=requested_by_id, requested_at=now or utcnow()))
    db.session.add_all(added)
    return added


def add_opinion_requests(
    mail: Mail, targets: list[OpinionTarget], requested_by_id: int | None, now: datetime | None = None,
    existing: DistributionTargets | None = None,
) -> list[DistributionEntry]:
    """Ask each target for an opinion, unless an opinion of that target is still pending.

    Pending opinions are read from the database unless ``existing`` contains them.
    """
    pending = existing.pending_opinions if existing is not None else _existing_targets(mail.id, OPINION, pending_only=True)
    added = []
    for target in targets:
        key = ("user", target.user_id) if target.user_id is not None else ("department", target.department_id)
        if key in pending:
            continue
        pending.add(key)
        added.append(
            DistributionEntry(
                mail_id=mail.id, role=OPINION, user_id=target.user_id, department_id=target.department_id,
                requested_by_id=requested_by_id, requested_at=now or utcnow(), due_date=target.due_date,
            )
        )
    db.session.add_all(added)
    return added


def _existing_targets(mail_id: int, role: str, pending_only: bool = False) -> set[tuple[str, int | None]]:
    statement = select(DistributionEntry).where(DistributionEntry.mail_id == mail_id, DistributionEntry.role == role)
    if pending_only:
        statement = statement.where(DistributionEntry.answered_at.is_(None))
    targets: set[tuple[str, int | None]] = set()
    for entry in db.session.execute(statement).scalars():
        if entry.user_id is not None:
            targets.add(("user", entry.user_id))
        else:
            targets.add(("department", entry.department_id))
    return targets


def apply_model(
    mail: Mail, model: DistributionListSpec, requested_by_id: int | None, today: date, now: datetime | None = None,
    existing: DistributionTargets | None = None,
) -> dict[str, list[str]]:
    """Add the copies and opinion requests of ``model`` to ``mail``; return what was added, by username and code.

    ``existing`` is passed on to add_copies and add_opinion_requests.
    """
    users = user_ids_by_username(model.copies.users + [item.user for item in model.opinions if item.user])
    codes = department_ids_by_code(model.copies.departments + [item.department for item in model.opinions if item.department])
    copies = add_copies(
        mail, [users[name] for name in model.copies.users if name in users],
        [codes[code] for code in model.copies.departments if code in codes], requested_by_id, now, existing,
    )
    targets = [
        OpinionTarget(
            users.get(item.user) if item.user else None,
            codes.get(item.department) if item.department else None,
            opinion_due_date(item.working_days, today),
        )
        for item in model.opinions
        if (item.user and item.user in users) or (item.department and item.department in codes)
    ]
    opinions = add_opinion_requests(mail, targets, requested_by_id, now, existing)
    names = target_names(users, codes)
    return {
        "copies": [describe_target(entry, names) for entry in copies],
        "opinions": [describe_target(entry, names) for entry in opinions],
    }


def target_names(user_ids: dict[str, int], department_ids: dict[str, int]) -> dict[tuple[str, int], str]:
    """Invert the maps of user_ids_by_username and department_ids_by_code for describe_target."""
    names = {("user", user_id): username for username, user_id in user_ids.items()}
    names.update({("department", department_id): code for code, department_id in department_ids.items()})
    return names


def describe_target(entry: DistributionEntry, names: dict[tuple[str, int], str] | None = None) -> str:
    """Return the username or department code an entry points at, for history details.

    ``names`` (from target_names) contains the names the caller has already read, so that their rows are not read again.
    """
    if entry.user_id is not None:
        if names and ("user", entry.user_id) in names:
            return names[("user", entry.user_id)]
        user = entry.user or db.session.get(User, entry.user_id)
        return user.username if user else str(entry.user_id)
    if names and entry.department_id is not None and ("department", entry.department_id) in names:
        return names[("department", entry.department_id)]
    department = entry.department or db.session.get(Department, entry.department_id)
    return department.code if department else str(entry.department_id)


def entry_targets_user_clause(user_id: int, department_ids: frozenset[int]):  # type: ignore[no-untyped-def]
    """Return a SQL condition on DistributionEntry: addressed to the user or to one of ``department_ids``."""
    if not department_ids:
        return DistributionEntry.user_id == user_id
    return or_(DistributionEntry.user_id == user_id, DistributionEntry.department_id.in_(sorted(department_ids)))


def pending_opinions_for(mail_id: int, user_id: int, department_ids: frozenset[int]) -> list[DistributionEntry]:
    """Return the opinion requests on the mail addressed to the user or their departments, not answered yet."""
    statement = select(DistributionEntry).where(
        and_(
            DistributionEntry.mail_id == mail_id,
            DistributionEntry.role == OPINION,
            DistributionEntry.answered_at.is_(None),
            entry_targets_user_clause(user_id, department_ids),
        )
    ).order_by(DistributionEntry.id)
    return list(db.session.execute(statement).scalars())


def mark_read(mail_id: int, user_id: int, now: datetime | None = None) -> bool:
    """Record that the user read the mail; return False when it was already marked."""
    exists = db.session.execute(
        select(ReadMark.id).where(ReadMark.mail_id == mail_id, ReadMark.user_id == user_id)
    ).first()
    if exists is not None:
        return False
    db.session.add(ReadMark(mail_id=mail_id, user_id=user_id, read_at=now or utcnow()))
    return True


def distribution_of(mail_id: int) -> list[DistributionEntry]:
    statement = select(DistributionEntry).where(DistributionEntry.mail_id == mail_id).order_by(DistributionEntry.id)
    return list(db.session.execute(statement).scalars())

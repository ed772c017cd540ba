"""Create users with their roles and departments."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from app.core.errors import ValidationFailed
from app.extensions import db
from app.organisation.models import Department, UserDepartment

log = logging.getLogger(__name__)


def ensure_user(
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    roles: list[str],
    department_code: str,
    password: str,
    secondary_departments: tuple[str, ...] = (),
    is_head: bool = False,
) -> int:
    """Create the user if missing, then set roles and departments; return the user id."""
    security = current_app.appbuilder.sm
    role_rows = []
    for name in roles:
        role = security.find_role(name)
        if role is None:
            raise ValidationFailed({"roles": [f"unknown role {name}: apply the schemas first"]})
        role_rows.append(role)

    user = security.find_user(username=username)
    if user is None:
        user = security.add_user(username, first_name, last_name, email, role_rows, password=password)
        if not user:
            raise ValidationFailed({"username": [f"user {username} could not be created"]})
        log.info("user %s created", username)
    else:
        user.roles = role_rows
    set_departments(int(user.id), department_code, secondary_departments, [department_code] if is_head else [])
    db.session.commit()
    return int(user.id)


def set_departments(user_id: int, primary: str, others: Iterable[str] = (), heads: Iterable[str] = ()) -> None:
    """Make the user a member of ``primary`` (their main department) and ``others``, heading ``heads``.

    Every code must name an active department, and a department headed must
    be one of the user's. Replaces the user's memberships; the caller commits.
    Raises ValidationFailed with the field "primary", "others" or "heads".
    """
    others = [code for code in dict.fromkeys(others) if code != primary]
    heads = list(dict.fromkeys(heads))
    codes = [primary, *others]
    departments = {
        row.code: row for row in db.session.execute(
            select(Department).where(Department.code.in_(codes), Department.active.is_(True))
        ).scalars()
    }
    errors: dict[str, list[str]] = {}
    if not primary:
        errors["primary"] = [str(_l("Choose the main department: the agent's baskets show its mail."))]
    elif primary not in departments:
        errors["primary"] = [str(_l("The department %(code)s does not exist or is closed.", code=primary))]
    unknown = [code for code in others if code not in departments]
    if unknown:
        errors["others"] = [str(_l("The department %(code)s does not exist or is closed.", code=unknown[0]))]
    outside = [code for code in heads if code not in codes]
    if outside:
        errors["heads"] = [str(_l("The agent can head only a department they belong to: %(code)s is not one of them.",
                                  code=outside[0]))]
    if errors:
        raise ValidationFailed(errors)

    db.session.execute(delete(UserDepartment).where(UserDepartment.user_id == user_id))
    db.session.add_all(
        UserDepartment(user_id=user_id, department_id=departments[code].id, is_primary=code == primary,
                       is_head=code in heads)
        for code in codes
    )

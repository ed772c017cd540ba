"""Create users with their roles and departments."""

from __future__ import annotations

import logging

from flask import current_app
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
    codes = [department_code, *secondary_departments]
    departments = {
        row.code: row for row in db.session.execute(select(Department).where(Department.code.in_(codes))).scalars()
    }
    missing = [code for code in codes if code not in departments]
    if missing:
        raise ValidationFailed({"department": [f"unknown department {missing[0]}"]})

    db.session.execute(delete(UserDepartment).where(UserDepartment.user_id == user.id))
    for code in codes:
        db.session.add(
            UserDepartment(
                user_id=user.id, department_id=departments[code].id,
                is_primary=code == department_code, is_head=is_head and code == department_code,
            )
        )
    db.session.commit()
    return int(user.id)

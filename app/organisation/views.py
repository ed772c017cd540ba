"""Administration screens "agents and departments": which departments each user belongs to and heads.

A user is shown the mail of their departments and of the departments below them.
An account without a department is shown none, so the list puts such accounts first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from app.core.db import run_in_write_transaction
from app.core.errors import PermissionDenied, ValidationFailed
from app.extensions import db
from app.organisation.models import Department, UserDepartment
from app.organisation.operations import set_departments
from app.portal.access import login_required, require_user

security_log = logging.getLogger("estafette.security")


@dataclass
class Membership:
    code: str
    label: str
    is_primary: bool
    is_head: bool


@dataclass
class UserRow:
    id: int
    username: str
    name: str
    active: bool
    memberships: list[Membership] = field(default_factory=list)


def _require_administrator() -> Any:
    user = require_user()
    if not user.can("administer"):
        raise PermissionDenied()
    return user


def _department_rows() -> list[tuple[Department, int]]:
    """Return the active departments in tree order, each with its depth below the root."""
    rows = db.session.execute(select(Department).where(Department.active.is_(True)).order_by(Department.path)).scalars()
    return [(row, row.path.count("/") - 2) for row in rows]


class DepartmentMembershipView(BaseView):
    route_base = "/admin/users"

    @expose("/departments")
    @login_required
    def index(self) -> Any:
        from app.mail.views import locale_code

        _require_administrator()
        locale = locale_code()
        users = {
            row.id: UserRow(row.id, row.username, f"{row.first_name} {row.last_name}", bool(row.active))
            for row in db.session.execute(
                select(User.id, User.username, User.first_name, User.last_name, User.active)
                .order_by(User.last_name, User.first_name)
            )
        }
        memberships = db.session.execute(
            select(UserDepartment.user_id, UserDepartment.is_primary, UserDepartment.is_head, Department)
            .join(Department, Department.id == UserDepartment.department_id)
            .order_by(UserDepartment.is_primary.desc(), Department.path)
        ).all()
        for user_id, is_primary, is_head, department in memberships:
            if user_id in users:
                users[user_id].memberships.append(
                    Membership(department.code, department.label(locale), bool(is_primary), bool(is_head))
                )
        without = [row for row in users.values() if row.active and not row.memberships]
        others = [row for row in users.values() if not (row.active and not row.memberships)]
        return self.render_template("organisation/members.html", without=without, users=others)

    @expose("/<int:user_id>/departments", methods=["GET", "POST"])
    @login_required
    def edit(self, user_id: int) -> Any:
        from app.mail.views import locale_code

        administrator = _require_administrator()
        account = db.session.get(User, user_id)
        if account is None:
            raise NotFound()
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            primary = (request.form.get("primary") or "").strip()
            others = request.form.getlist("member")
            heads = request.form.getlist("head")
            try:
                run_in_write_transaction(lambda: set_departments(user_id, primary, others, heads),
                                         f"set the departments of user {user_id}")
            except ValidationFailed as failure:
                errors = failure.field_errors
                flash(failure.message, "danger")
                chosen = {"primary": primary, "member": set(others), "head": set(heads)}
            else:
                security_log.info("departments of %s set by %s: main %s, also %s, heads %s",
                                  account.username, administrator.display_name, primary, others, heads)
                flash(_("The departments of %(name)s are saved: their baskets show the mail of these departments.",
                        name=f"{account.first_name} {account.last_name}"), "success")
                return redirect(url_for("DepartmentMembershipView.index"))
        else:
            current = db.session.execute(
                select(Department.code, UserDepartment.is_primary, UserDepartment.is_head)
                .join(Department, Department.id == UserDepartment.department_id)
                .where(UserDepartment.user_id == user_id)
            ).all()
            chosen = {
                "primary": next((code for code, is_primary, _head in current if is_primary), ""),
                "member": {code for code, _primary, _head in current},
                "head": {code for code, _primary, is_head in current if is_head},
            }
        return self.render_template(
            "organisation/user_departments.html", account=account, departments=_department_rows(),
            chosen=chosen, errors=errors, locale=locale_code(),
        )


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(DepartmentMembershipView())

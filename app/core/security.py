"""Flask-AppBuilder's security manager: login statistics written safely on SQLite, permission checks read once per request, password length."""

from __future__ import annotations

import datetime
from typing import Any

from flask import g, has_request_context
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import (
    Permission,
    PermissionView,
    User,
    ViewMenu,
    assoc_permissionview_role,
)
from flask_appbuilder.security.views import UserDBModelView
from flask_babel import lazy_gettext
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from app.core.db import run_in_write_transaction
from app.extensions import db

# Shortest password that Flask-AppBuilder's password forms accept. The help text under their
# password field states it too, in both catalogs (msgid "Please use a good password policy…").
PASSWORD_MIN_LENGTH = 12


def check_password_length(password: str) -> None:
    """Raise PasswordComplexityValidationError for a password shorter than PASSWORD_MIN_LENGTH characters."""
    from flask_appbuilder.exceptions import PasswordComplexityValidationError
    from flask_babel import gettext as _

    if len(password or "") < PASSWORD_MIN_LENGTH:
        raise PasswordComplexityValidationError(
            _("A password has at least %(count)s characters.", count=PASSWORD_MIN_LENGTH)
        )


def _role_label(name: str) -> str:
    """Return the label of role ``name`` in the user's language, as schemas/roles.yaml declares it; else the name."""
    from flask_babel import get_locale

    from app.configuration.operations import ConfigurationMissing, current_configuration

    locale = get_locale()
    language = locale.language if locale else "fr"
    try:
        spec = current_configuration().roles.get(name)
    except ConfigurationMissing:
        spec = None
    return spec.labels.get(language) if spec is not None else name


def _role_labels(roles: Any) -> str:
    return ", ".join(_role_label(role.name) for role in roles or [])


def _yes_no(value: Any) -> str:
    return str(lazy_gettext("Yes") if value else lazy_gettext("No"))


def _count(value: Any) -> str:
    return str(value or 0)


def _moment(value: Any) -> str:
    from app.portal.hooks import _local_datetime

    return _local_datetime(value) if value is not None else "—"


def _person(value: Any) -> str:
    return f"{value.first_name} {value.last_name}" if value is not None else "—"


class EstafetteUserDBModelView(UserDBModelView):
    """Flask-AppBuilder's user pages, with the roles by their labels, yes or no, dates and counters as words."""

    # The permissions the roles were granted name Flask-AppBuilder's class.
    class_permission_name = "UserDBModelView"
    # Without "groups": the roles are granted to users directly.
    list_columns = ["first_name", "last_name", "username", "email", "active", "roles"]
    user_show_fieldsets = [
        (lazy_gettext("User info"), {"fields": ["username", "roles"]}),
        (lazy_gettext("Personal Info"), {"fields": ["first_name", "last_name", "email"], "expanded": True}),
    ]
    formatters_columns = {
        "roles": _role_labels, "active": _yes_no, "login_count": _count, "fail_login_count": _count,
        "last_login": _moment, "created_on": _moment, "changed_on": _moment,
        "created_by": _person, "changed_by": _person,
    }

    def post_add(self, item: Any) -> None:
        """Flash a link to the new account's departments, because an account without one is shown no mail."""
        from flask import flash, url_for
        from markupsafe import Markup, escape

        link = url_for("DepartmentMembershipView.edit", user_id=item.id)
        message = lazy_gettext("%(name)s sees no mail until they belong to a department: %(link)s.")
        flash(Markup(str(message) % {
            "name": escape(f"{item.first_name} {item.last_name}"),
            "link": Markup('<a href="%s">%s</a>') % (link, lazy_gettext("choose their departments")),
        }), "warning")


class EstafetteSecurityManager(SecurityManager):
    userdbmodelview = EstafetteUserDBModelView
    # Flask-AppBuilder's chart of login counts exists in English only and is of no use to an administrator here.
    userstatschartview = None

    def _has_view_access(self, user: object, permission_name: str, view_name: str) -> bool:
        """Check a permission of the logged-in user against the grants their request context read already.

        Flask-AppBuilder's own check reads the user's roles, their groups and
        the roles' grants: three queries per page, for the same rows that
        build_user_context() reads in one. Other users, and configurations
        with built-in roles (FAB_ROLES), take Flask-AppBuilder's path.
        """
        from app.organisation.context import current_user_context

        context = current_user_context() if has_request_context() and not self.builtin_roles else None
        if context is None or context.user_id != getattr(user, "id", None):
            return super()._has_view_access(user, permission_name, view_name)
        return (view_name, permission_name) in context.grants

    def exist_permission_on_roles(self, view_name: str, permission_name: str, role_ids: list[int]) -> bool:
        """Check a permission against every grant of ``role_ids``, read in one query per request.

        Flask-AppBuilder's own check runs one query per call, and rendering
        the menu calls it for every menu entry of every page.
        """
        if not has_request_context():
            return super().exist_permission_on_roles(view_name, permission_name, role_ids)
        key = tuple(sorted(role_ids))
        cache: dict[tuple[int, ...], frozenset[tuple[str, str]]] = g.setdefault("estafette_role_grants", {})
        grants = cache.get(key)
        if grants is None:
            rows = db.session.execute(
                select(ViewMenu.name, Permission.name)
                .join(PermissionView, PermissionView.view_menu_id == ViewMenu.id)
                .join(Permission, PermissionView.permission_id == Permission.id)
                .join(assoc_permissionview_role, assoc_permissionview_role.c.permission_view_id == PermissionView.id)
                .where(assoc_permissionview_role.c.role_id.in_(key))
            )
            grants = cache[key] = frozenset((view, permission) for view, permission in rows)
        return (view_name, permission_name) in grants

    def update_user_auth_stat(self, user: Any, success: bool = True) -> None:
        """Count a login attempt in one short write transaction.

        Flask-AppBuilder merges the user read earlier in the request and
        commits, which on SQLite upgrades a read transaction to a write one.
        When the scheduler or another agent committed in between, that upgrade
        fails at once with "database is locked", and the login count was lost.
        """
        if success:
            values = {
                "login_count": (user.login_count or 0) + 1,
                # Flask-AppBuilder's column is naive local time; keep its meaning.
                "last_login": datetime.datetime.now(),
                "fail_login_count": 0,
            }
        else:
            values = {"fail_login_count": (user.fail_login_count or 0) + 1}

        def write() -> None:
            db.session.execute(update(User).where(User.id == user.id).values(**values))

        run_in_write_transaction(write, f"login statistics of user {user.id}")
        for name, value in values.items():
            # Plain attribute writes would mark the user dirty and flush again.
            set_committed_value(user, name, value)
        if success:
            self.on_user_login(user)
        else:
            self.on_user_login_failed(user)

"""The current user's departments in scope and generated permissions."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from flask import g, has_request_context
from flask_appbuilder.security.sqla.models import (
    Permission,
    PermissionView,
    ViewMenu,
    assoc_group_role,
    assoc_permissionview_role,
    assoc_user_group,
    assoc_user_role,
)
from sqlalchemy import (
    Boolean,
    CompoundSelect,
    Date,
    Integer,
    Row,
    Select,
    bindparam,
    cast,
    null,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import aliased

from app.configuration.operations import MAIL_TYPE_VIEW_MENU_PREFIX, MAIL_VIEW_MENU
from app.extensions import db
from app.organisation.models import Department, UserDepartment


@dataclass(frozen=True)
class UserContext:
    """The facts the visibility rule and the baskets need about one user."""

    user_id: int
    display_name: str
    # Permission names on the "Mail" view menu without the "can_" prefix: read, register...
    permissions: frozenset[str]
    registrable_types: frozenset[str]
    department_ids: frozenset[int]
    primary_department_id: int | None
    # department_ids plus all their sub-departments.
    scope_department_ids: frozenset[int] = field(default_factory=frozenset)
    # Every (view menu, permission) pair the user's roles grant, direct or through a group, for
    # Flask-AppBuilder's checks of menus and views (app/core/security.py).
    grants: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    # Ids of the absent agents this user is the delegate of on the day the context was built, in id
    # order. None means the context was built without them, so delegator_contexts() queries them.
    delegator_ids: tuple[int, ...] | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def can_register(self, type_id: str) -> bool:
        return self.can("register") and type_id in self.registrable_types


@functools.cache
def _granted_ids_statement() -> Select[Any]:
    """Build the query of the ids of the permission views granted to the roles of user ``:user_id``, direct or through a group.

    It is built once per process because building it costs more than running it,
    and the context runs it at every request. It reads two tables and no names:
    PostgreSQL, which plans every run, took 0.8 ms to plan the same query joined
    to the names of the view menus and permissions, and 0.2 ms to plan this one.
    """
    user_id = bindparam("user_id", type_=Integer)
    role_ids = union(
        select(assoc_user_role.c.role_id).where(assoc_user_role.c.user_id == user_id),
        select(assoc_group_role.c.role_id)
        .join(assoc_user_group, assoc_user_group.c.group_id == assoc_group_role.c.group_id)
        .where(assoc_user_group.c.user_id == user_id),
    )
    return (
        select(assoc_permissionview_role.c.permission_view_id)
        .where(assoc_permissionview_role.c.role_id.in_(role_ids))
        .distinct()
    )


# The (view menu, permission) names of every permission view, by id, read once per process.
# Flask-AppBuilder adds permission views (``flask schemas apply``, add_permissions) and deletes
# them, but its security pages only list them, so the names of an id never change.
_permission_view_names: dict[int, tuple[str, str]] = {}


def _names_of_permission_views(ids: list[int]) -> list[tuple[str, str]]:
    """Return the (view menu, permission) names of the permission views ``ids``, reading them all again for an unknown id."""
    global _permission_view_names
    names = _permission_view_names
    if any(permission_view_id not in names for permission_view_id in ids):
        rows = db.session.execute(
            select(PermissionView.id, ViewMenu.name, Permission.name)
            .join(ViewMenu, PermissionView.view_menu_id == ViewMenu.id)
            .join(Permission, PermissionView.permission_id == Permission.id)
        )
        names = {permission_view_id: (view_menu, permission) for permission_view_id, view_menu, permission in rows}
        _permission_view_names = names
    # An id still unknown was deleted since the roles were read.
    return [names[permission_view_id] for permission_view_id in ids if permission_view_id in names]


def department_scope(department_ids: frozenset[int]) -> frozenset[int]:
    """Return the given departments and every department below them."""
    if not department_ids:
        return frozenset()
    paths = db.session.execute(select(Department.path).where(Department.id.in_(department_ids))).scalars()
    conditions = [Department.path.startswith(path) for path in paths]
    ids = db.session.execute(select(Department.id).where(or_(*conditions))).scalars()
    return frozenset(ids)


@functools.cache
def _context_statement() -> CompoundSelect:
    """Build the query of what the context of user ``:user_id`` needs, one part per kind of row.

    Its parts are the user's memberships with their scope, the absent agents
    whose delegate the user is on ``:today``, and the permission views granted to
    the user's roles. It is built once per process, like
    _granted_ids_statement(), and runs as one statement because the context is
    built at every request.
    """
    from app.absences.models import Absence
    from app.absences.operations import active_delegators_statement

    user_id = bindparam("user_id", type_=Integer)
    member = aliased(Department)
    below = aliased(Department)
    null_integer = cast(null(), Integer)
    memberships = (
        select(
            UserDepartment.department_id,
            UserDepartment.is_primary,
            below.id.label("scope_department_id"),
            null_integer.label("delegator_id"),
            null_integer.label("permission_view_id"),
        )
        .join(member, member.id == UserDepartment.department_id)
        .join(below, below.path.startswith(member.path))
        .where(UserDepartment.user_id == user_id)
    )
    delegators = active_delegators_statement(user_id, bindparam("today", type_=Date)).with_only_columns(
        null_integer, cast(null(), Boolean), null_integer, Absence.user_id, null_integer
    )
    granted = _granted_ids_statement().with_only_columns(
        null_integer, cast(null(), Boolean), null_integer, null_integer, assoc_permissionview_role.c.permission_view_id
    )
    return union_all(memberships, delegators, granted)


def _context_rows(user_id: int) -> list[Row]:
    """Return a row per membership of the user and per department in its scope, per absent agent whose delegate they are, and per granted permission view.

    Membership rows have ``delegator_id`` and ``permission_view_id`` None,
    delegation rows only ``delegator_id``, grant rows only
    ``permission_view_id``.
    """
    from app.mail.operations import today_in_paris

    return list(db.session.execute(_context_statement(), {"user_id": user_id, "today": today_in_paris()}))


def build_user_context(user: object) -> UserContext:
    user_id = int(user.id)  # type: ignore[attr-defined]
    permissions: set[str] = set()
    types: set[str] = set()
    rows = _context_rows(user_id)
    grants = _names_of_permission_views(
        [row.permission_view_id for row in rows if row.permission_view_id is not None]
    )
    for view_menu, permission in grants:
        name = permission.removeprefix("can_")
        if view_menu == MAIL_VIEW_MENU:
            permissions.add(name)
        elif name == "register":
            types.add(view_menu.removeprefix(MAIL_TYPE_VIEW_MENU_PREFIX))

    memberships = [row for row in rows if row.department_id is not None]
    department_ids = frozenset(row.department_id for row in memberships)
    primary = next((row.department_id for row in memberships if row.is_primary), None)
    first = getattr(user, "first_name", "") or ""
    last = getattr(user, "last_name", "") or ""
    return UserContext(
        user_id=user_id,
        display_name=f"{first} {last}".strip() or str(getattr(user, "username", user_id)),
        permissions=frozenset(permissions),
        registrable_types=frozenset(types),
        department_ids=department_ids,
        primary_department_id=primary,
        scope_department_ids=frozenset(row.scope_department_id for row in memberships),
        grants=frozenset(grants),
        delegator_ids=tuple(sorted({row.delegator_id for row in rows if row.delegator_id is not None})),
    )


def current_user_context() -> UserContext | None:
    """Return the context of the logged-in user, computed once per request.

    NOTE: ``g`` lives as long as the application context. A request pushed
    inside an already active application context (a test or a script) shares
    it with the requests before, as Flask-Login's cached user does.
    """
    from flask_login import current_user

    if not has_request_context() or not current_user or not current_user.is_authenticated:
        return None
    context = getattr(g, "estafette_user_context", None)
    if context is None or context.user_id != int(current_user.id):
        context = build_user_context(current_user)
        g.estafette_user_context = context
    return context

"""Apply a validated set of schema files, and serve the applied configuration."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import Permission, PermissionView, Role, ViewMenu
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.configuration.errors import SchemaError
from app.configuration.loader import (
    Configuration,
    LoadFailed,
    SourceFile,
    compute_checksum,
    load_configuration,
    read_sources,
)
from app.configuration.models import SchemaVersion
from app.configuration.specs import SCHEMA_FORMAT_VERSION, DepartmentSpec
from app.core.db import run_in_write_transaction
from app.core.errors import EstafetteError
from app.extensions import db
from app.organisation.models import Department

log = logging.getLogger(__name__)

# Flask-AppBuilder view menu holding the mail permissions; per-type menus are
# "MailType.<id>".  These names are stable: role grants refer to them.
MAIL_VIEW_MENU = "Mail"
MAIL_TYPE_VIEW_MENU_PREFIX = "MailType."
ROLE_PERMISSIONS = {
    "register": "can_register",
    "process": "can_process",
    "statistics": "can_statistics",
    "administer": "can_administer",
    "read_all": "can_read_all",
}


class ConfigurationMissing(EstafetteError):
    http_status = 503


@dataclass(frozen=True)
class ApplyResult:
    version: int
    changed: bool


def mail_type_view_menu(type_id: str) -> str:
    return f"{MAIL_TYPE_VIEW_MENU_PREFIX}{type_id}"


def apply_directory(directory: Path, actor_id: int | None = None, comment: str | None = None) -> ApplyResult:
    """Validate the files of ``directory`` and apply them as a new version.

    Raises LoadFailed before anything changes when a file is invalid.  Applying
    the same files twice creates no new version.
    """
    from app.documents.template_files import record_schema_template_files, store_schema_template_files

    sources = read_sources(directory)
    configuration = load_configuration(sources, files_root=directory)
    errors = removals_in_use(configuration)
    if errors:
        raise LoadFailed(errors)
    # Template files go to the content store before the transaction, like uploads.
    stored_templates = store_schema_template_files(configuration, directory)
    result = run_in_write_transaction(
        lambda: _apply(configuration, sources, actor_id, comment), "apply schemas"
    )
    # Outside _apply: a changed .docx with unchanged YAML files is recorded too.
    run_in_write_transaction(
        lambda: record_schema_template_files(stored_templates, actor_id), "record template files"
    )
    return result


def removals_in_use(configuration: Configuration) -> list[SchemaError]:
    """Return an error for each department or mail type that ``configuration`` removes while the register uses it.

    A department removed from the files is closed and leaves the tree, so its
    open mail would leave every basket above it, and its agents would see
    nothing. A mail type removed would leave its mail without labels, fields
    or legal regime. Closed mail of a removed department does not prevent it.
    """
    from flask_appbuilder.security.sqla.models import User

    from app.mail.models import Mail
    from app.organisation.models import UserDepartment

    errors = []
    removed = db.session.execute(
        select(Department.id, Department.code)
        .where(Department.active.is_(True), Department.code.not_in(list(configuration.departments)))
    ).all()
    for department_id, code in removed:
        open_mail = db.session.execute(
            select(func.count()).select_from(Mail)
            .where(Mail.handling_department_id == department_id, Mail.status.not_in(sorted(configuration.closed_statuses)))
        ).scalar_one()
        members = db.session.execute(
            select(func.count()).select_from(UserDepartment).join(User, User.id == UserDepartment.user_id)
            .where(UserDepartment.department_id == department_id, User.active.is_(True))
        ).scalar_one()
        if open_mail or members:
            errors.append(SchemaError("", 0, f"departments.{code}", "department_in_use",
                                      {"code": code, "mails": open_mail, "users": members}))
    # Only the types the applied version declares: one removed earlier is left as it was.
    removed_types = sorted(set(_applied_mail_types()) - set(configuration.mail_types))
    used_types = db.session.execute(
        select(Mail.mail_type, func.count()).where(Mail.mail_type.in_(removed_types)).group_by(Mail.mail_type)
    ).all() if removed_types else []
    for type_id, count in used_types:
        errors.append(SchemaError("", 0, f"mail_types.{type_id}", "mail_type_in_use", {"type": type_id, "mails": count}))
    return errors


def _applied_mail_types() -> list[str]:
    """Return the mail types of the applied version; none when no version is applied or its files no longer load."""
    latest = db.session.execute(select(SchemaVersion).order_by(SchemaVersion.number.desc()).limit(1)).scalar()
    if latest is None:
        return []
    try:
        return list(configuration_of(latest).mail_types)
    except LoadFailed:
        log.warning("schema version %s cannot be read: removed mail types not checked", latest.number)
        return []


def configuration_of(version: SchemaVersion) -> Configuration:
    """Load the configuration of a stored version from its files; raise LoadFailed when this loader rejects them."""
    return load_configuration([SourceFile(name, text) for name, text in sorted(version.files.items())])


def _apply(
    configuration: Configuration, sources: list[SourceFile], actor_id: int | None, comment: str | None
) -> ApplyResult:
    latest = db.session.execute(
        select(SchemaVersion).order_by(SchemaVersion.number.desc()).limit(1)
    ).scalar_one_or_none()
    if latest is not None and latest.checksum == configuration.checksum:
        return ApplyResult(latest.number, changed=False)

    number = (latest.number if latest else 0) + 1
    db.session.add(
        SchemaVersion(
            number=number,
            checksum=compute_checksum(sources),
            format_version=SCHEMA_FORMAT_VERSION,
            files={source.name: source.text for source in sources},
            applied_by_id=actor_id,
            comment=comment,
        )
    )
    _sync_departments(configuration)
    _sync_roles(configuration)
    _refresh_acknowledgement_state(latest, configuration)
    log.info("schema version %s applied (checksum %s)", number, configuration.checksum[:12])
    return ApplyResult(number, changed=True)


def _refresh_acknowledgement_state(latest: SchemaVersion | None, configuration: Configuration) -> None:
    """Recompute the AR state of the mail of every type whose need for ARs changed, in the transaction of the apply."""
    from app.documents.acknowledgement_state import refresh_all, refresh_changed_types

    before = None
    if latest is not None:
        try:
            before = configuration_of(latest)
        except LoadFailed:
            # Files of an older format that this loader refuses: recompute every mail rather than guess.
            log.warning("schema version %s cannot be read: acknowledgement state of every mail recomputed",
                        latest.number)
            refresh_all(db.session.connection(), configuration)
            return
    changed = refresh_changed_types(db.session.connection(), before, configuration)
    if changed:
        log.info("acknowledgement state of the mail of types %s recomputed", ", ".join(changed))


def _sync_departments(configuration: Configuration) -> None:
    existing = {row.code: row for row in db.session.execute(select(Department)).scalars()}
    for spec in configuration.departments.values():
        row = existing.get(spec.code)
        if row is None:
            row = Department(code=spec.code, path="/")
            db.session.add(row)
            existing[spec.code] = row
        _copy_department(spec, row)
    db.session.flush()

    for code, row in existing.items():
        spec = configuration.departments.get(code)
        row.active = spec is not None
        row.parent_id = existing[spec.parent].id if spec and spec.parent else None
    db.session.flush()

    for row in existing.values():
        row.path = _department_path(row, existing)


def _copy_department(spec: DepartmentSpec, row: Department) -> None:
    row.label_fr = spec.labels.fr
    row.label_en = spec.labels.en
    row.email = spec.email
    row.phone = spec.phone
    row.address = spec.address
    row.calendar = spec.calendar


def _department_path(row: Department, by_code: dict[str, Department]) -> str:
    by_id = {item.id: item for item in by_code.values()}
    ids = [row.id]
    parent_id = row.parent_id
    while parent_id is not None:
        ids.append(parent_id)
        parent_id = by_id[parent_id].parent_id
    return "/" + "/".join(str(item) for item in reversed(ids)) + "/"


def _own_profile_permissions() -> list[tuple[str, str]]:
    """Return the (permission, view menu) pairs of a user's own profile: see it, edit the name, change the password.

    The header of every page links to the profile, so every role grants them.
    The names are those of the views of the configured authentication type.
    """
    security = current_app.appbuilder.sm
    user_view = _view_menu_name(security.user_view)
    pairs = [("can_userinfo", user_view)]
    edit_view = getattr(security, "userinfoeditview", None)
    if edit_view is not None:
        pairs += [("userinfoedit", user_view), ("can_this_form_get", _view_menu_name(edit_view)),
                  ("can_this_form_post", _view_menu_name(edit_view))]
    # Only database authentication has a password to change here.
    password_view = getattr(security, "resetmypasswordview", None)
    if password_view is not None:
        pairs += [("resetmypassword", user_view), ("can_this_form_get", _view_menu_name(password_view)),
                  ("can_this_form_post", _view_menu_name(password_view))]
    return pairs


def _view_menu_name(view: Any) -> str:
    """Return the view menu name that Flask-AppBuilder checks for ``view``, a view class or a registered view."""
    name = getattr(view, "class_permission_name", None)
    if name:
        return str(name)
    return view.__name__ if isinstance(view, type) else type(view).__name__


def _permission_view(permission_name: str, view_menu_name: str) -> PermissionView:
    permission = db.session.execute(
        select(Permission).where(Permission.name == permission_name)
    ).scalar_one_or_none() or Permission(name=permission_name)
    view_menu = db.session.execute(
        select(ViewMenu).where(ViewMenu.name == view_menu_name)
    ).scalar_one_or_none() or ViewMenu(name=view_menu_name)
    db.session.add_all([permission, view_menu])
    db.session.flush()
    found = db.session.execute(
        select(PermissionView).where(
            PermissionView.permission_id == permission.id, PermissionView.view_menu_id == view_menu.id
        )
    ).scalar_one_or_none()
    if found is None:
        found = PermissionView(permission=permission, view_menu=view_menu)
        db.session.add(found)
        db.session.flush()
    return found


def _sync_roles(configuration: Configuration) -> None:
    """Give each declared role exactly the permissions its declaration implies."""
    public_name = current_app.config.get("AUTH_ROLE_PUBLIC", "public")
    if db.session.execute(select(Role).where(Role.name == public_name)).scalar_one_or_none() is None:
        db.session.add(Role(name=public_name))
    for spec in configuration.roles.values():
        role = db.session.execute(select(Role).where(Role.name == spec.id)).scalar_one_or_none()
        if role is None:
            role = Role(name=spec.id)
            db.session.add(role)

        wanted = [_permission_view("can_read", MAIL_VIEW_MENU)]
        wanted += [_permission_view(ROLE_PERMISSIONS[name], MAIL_VIEW_MENU) for name in spec.permissions]
        type_ids = configuration.mail_types if "*" in spec.register_mail_types else spec.register_mail_types
        wanted += [_permission_view("can_register", mail_type_view_menu(type_id)) for type_id in type_ids]
        wanted += [_permission_view(permission, view_menu) for permission, view_menu in _own_profile_permissions()]
        if "administer" in spec.permissions:
            wanted += list(db.session.execute(select(PermissionView)).scalars())

        unique = {pv.id: pv for pv in wanted}
        # Grants made by hand on Flask-AppBuilder's own screens are kept; ours are set exactly.
        ours = [
            pv for pv in role.permissions
            if pv.view_menu.name == MAIL_VIEW_MENU or pv.view_menu.name.startswith(MAIL_TYPE_VIEW_MENU_PREFIX)
        ]
        for pv in ours:
            if pv.id not in unique:
                role.permissions.remove(pv)
        for pv in unique.values():
            if pv not in role.permissions:
                role.permissions.append(pv)


# --- The applied configuration, cached per process ------------------------------

_cache_lock = threading.Lock()
_cache: dict[str, object] = {"configuration": None, "checked_at": 0.0}


def latest_version_number() -> int | None:
    return db.session.execute(select(func.max(SchemaVersion.number))).scalar()


def current_configuration() -> Configuration:
    """Return the latest applied configuration, re-reading it when a newer version exists.

    The database, not the files on disk, is the source of truth, so every
    worker of a deployment uses the same version.
    """
    refresh_seconds = current_app.config.get("SCHEMA_REFRESH_SECONDS", 5)
    cached = _cache["configuration"]
    now = time.monotonic()
    if isinstance(cached, Configuration) and now - float(_cache["checked_at"]) < refresh_seconds:  # type: ignore[arg-type]
        return cached

    # No autoflush while the lock is held: a flush may wait for rows another transaction holds, and that
    # transaction may itself wait here (its commit reads the configuration for the statistics counters).
    with _cache_lock, db.session.no_autoflush:
        number = latest_version_number()
        if number is None:
            raise ConfigurationMissing(_l("No configuration has been applied yet: run `flask schemas apply`."))
        if not isinstance(cached, Configuration) or cached.version != number:
            row = db.session.get(SchemaVersion, number)
            assert row is not None
            cached = configuration_of(row)
            cached.version = number
            _cache["configuration"] = cached
        _cache["checked_at"] = now
        return cached


def forget_cached_configuration() -> None:
    _cache["configuration"] = None
    _cache["checked_at"] = 0.0

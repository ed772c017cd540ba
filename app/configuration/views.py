"""Administration screen "schema versions": each applied set of schema files, who applied it and what changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.configuration.models import SchemaVersion
from app.core.errors import PermissionDenied
from app.extensions import db
from app.portal.access import login_required, require_user

# Versions listed, newest first: each carries the text of every file, so the page stays short.
VERSIONS_SHOWN = 50


@dataclass
class VersionRow:
    number: int
    applied_at: datetime
    applied_by: str | None
    comment: str | None
    checksum: str
    files: int
    added: list[str]
    changed: list[str]
    removed: list[str]


def version_rows(limit: int = VERSIONS_SHOWN) -> list[VersionRow]:
    """Return the newest ``limit`` versions, each with the files it added, changed and removed."""
    versions = list(db.session.execute(
        select(SchemaVersion, User.first_name, User.last_name)
        .outerjoin(User, User.id == SchemaVersion.applied_by_id)
        .order_by(SchemaVersion.number.desc()).limit(limit + 1)
    ).all())
    rows = []
    for position, (version, first_name, last_name) in enumerate(versions[:limit]):
        before = versions[position + 1][0].files if position + 1 < len(versions) else {}
        files = version.files
        rows.append(VersionRow(
            number=version.number, applied_at=version.applied_at,
            applied_by=f"{first_name} {last_name}" if first_name is not None else None,
            comment=version.comment, checksum=version.checksum, files=len(files),
            added=sorted(set(files) - set(before)),
            changed=sorted(name for name in files if name in before and files[name] != before[name]),
            removed=sorted(set(before) - set(files)),
        ))
    return rows


class SchemaVersionView(BaseView):
    route_base = "/admin/schemas"

    @expose("/")
    @login_required
    def index(self) -> Any:
        if not require_user().can("administer"):
            raise PermissionDenied()
        return self.render_template("configuration/versions.html", versions=version_rows())


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SchemaVersionView())

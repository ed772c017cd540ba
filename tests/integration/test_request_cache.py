"""Per-request caches of the visibility facts: kept for one request, never for the next one or another user.

The user's context (with the grants that Flask-AppBuilder's menu checks
read), the absent agents they stand in for and the menu counts are kept on
``flask.g``. Each request outside an application context gets a fresh ``g``,
as under a WSGI server. So the requests below run outside one,
and only the set-up and the writes between requests open an application context.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import Permission, PermissionView, User, ViewMenu
from flask_login import login_user
from sqlalchemy import select

from app.absences.operations import cancel_absence, declare_absence
from app.demo.users import DEMO_USERS
from app.extensions import db
from app.mail.operations import today_in_paris
from tests.conftest import confidential_for_sejour, user_context


def test_context_not_kept_for_next_user(app, client_as):
    with app.app_context():
        mail_id = confidential_for_sejour("Signalement confidentiel du cache")
    sejour = client_as("sejour")
    assert sejour.get(f"/mail/{mail_id}").status_code == 200
    assert f'data-mail="{mail_id}"' in sejour.get("/mail/basket/to_process").get_data(as_text=True)

    other = client_as("naturalisation")
    assert other.get(f"/mail/{mail_id}").status_code == 404
    assert f'data-mail="{mail_id}"' not in other.get("/mail/basket/to_process").get_data(as_text=True)


def test_absence_seen_at_next_request(app, client_as):
    with app.app_context():
        mail_id = confidential_for_sejour("Signalement confidentiel du cache")
    delegate = client_as("naturalisation")
    assert delegate.get(f"/mail/{mail_id}").status_code == 404
    assert f'data-mail="{mail_id}"' not in delegate.get("/mail/basket/to_process").get_data(as_text=True)

    with app.app_context():
        today = today_in_paris()
        absence_id = declare_absence(
            user_context("sejour"), today, today + timedelta(days=2), user_context("naturalisation").user_id
        ).id
    assert delegate.get(f"/mail/{mail_id}").status_code == 200

    with app.app_context():
        cancel_absence(user_context("sejour"), absence_id)
    assert delegate.get(f"/mail/{mail_id}").status_code == 404


def test_context_carries_delegations(app_context):
    sejour_id = user_context("sejour").user_id
    assert user_context("naturalisation").delegator_ids == ()

    today = today_in_paris()
    absence = declare_absence(
        user_context("sejour"), today, today + timedelta(days=2), user_context("naturalisation").user_id
    )
    assert user_context("naturalisation").delegator_ids == (sejour_id,)
    assert user_context("sejour").delegator_ids == ()

    cancel_absence(user_context("sejour"), absence.id)
    assert user_context("naturalisation").delegator_ids == ()


@pytest.mark.parametrize("username", [user.username for user in DEMO_USERS])
def test_menu_access_same_as_appbuilder(app, username):
    """The grants read with the logged-in user's context give the same access as Flask-AppBuilder's own role queries."""
    with app.test_request_context("/"):
        manager = app.appbuilder.sm
        user = db.session.execute(select(User).where(User.username == username)).scalar_one()
        login_user(user)
        pairs = db.session.execute(
            select(ViewMenu.name, Permission.name)
            .join(PermissionView, PermissionView.view_menu_id == ViewMenu.id)
            .join(Permission, PermissionView.permission_id == Permission.id)
        ).all()

        ours = {(view, permission) for view, permission in pairs if manager._has_view_access(user, permission, view)}
        appbuilder = {
            (view, permission) for view, permission in pairs
            if SecurityManager._has_view_access(manager, user, permission, view)
        }

        assert ours == appbuilder
        assert ours


def test_new_permission_view_granted(app_context):
    """A permission view added after the process read the names of the others is granted at once."""
    assert ("Mail", "can_read") in user_context("admin").grants
    manager = app_context.appbuilder.sm
    permission_view = manager.add_permission_view_menu("can_archive_test", "ArchiveTestView")
    manager.add_permission_role(manager.find_role("administrator"), permission_view)

    try:
        grants = user_context("admin").grants
    finally:
        manager.del_permission_role(manager.find_role("administrator"), permission_view)
        manager.del_permission_view_menu("can_archive_test", "ArchiveTestView", cascade=True)

    assert ("ArchiveTestView", "can_archive_test") in grants
    assert ("ArchiveTestView", "can_archive_test") not in user_context("admin").grants

"""Flask-AppBuilder's security manager with login statistics written safely on SQLite."""

from __future__ import annotations

import datetime
from typing import Any

from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from app.core.db import run_in_write_transaction
from app.extensions import db


class EstafetteSecurityManager(SecurityManager):
    def update_user_auth_stat(self, user: Any, success: bool = True) -> None:
        """Count a login attempt in one short write transaction.

        Flask-AppBuilder merges the user read earlier in the request and
        commits, which on SQLite upgrades a read transaction to a write one:
        when the scheduler or another agent committed in between, that fails
        at once with "database is locked" and the agent saw an error page.
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

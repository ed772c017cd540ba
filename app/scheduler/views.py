"""The scheduler page for administrators: lease holder, jobs, queues."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from flask_appbuilder import AppBuilder, BaseView, expose

from app.core.errors import PermissionDenied
from app.portal.access import login_required, require_user
from app.scheduler.runner import scheduler_status


class SchedulerView(BaseView):
    route_base = "/scheduler"
    default_view = "index"

    @expose("/")
    @login_required
    def index(self) -> Any:
        user = require_user()
        if not user.can("administer"):
            raise PermissionDenied()
        return self.render_template("scheduler/status.html", status=scheduler_status(current_app))


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SchedulerView())

"""The home page: baskets with their counts and the registration shortcuts."""

from __future__ import annotations

from typing import Any

from flask import Flask, redirect, url_for
from flask_appbuilder import AppBuilder, IndexView, expose
from flask_login import current_user


class HomeView(IndexView):
    route_base = ""
    default_view = "index"
    index_template = "estafette/home.html"

    @expose("/")
    def index(self) -> Any:
        if not current_user or not current_user.is_authenticated:
            return redirect(url_for("AuthDBView.login"))
        from app.absences.operations import delegator_contexts, return_summaries
        from app.configuration.operations import current_configuration
        from app.mail.baskets import counts_for_user
        from app.portal.access import require_user

        user = require_user()
        configuration = current_configuration()
        registrable = [spec for spec in configuration.mail_types.values() if user.can_register(spec.id)]
        # The baskets of the absent agents whose delegate this user is today, with their counts.
        standing_in_for = [(context, counts_for_user(context, configuration)) for context in delegator_contexts(user)]
        return self.render_template(self.index_template, registrable=registrable, no_department=not user.department_ids,
                                    standing_in_for=standing_in_for, return_summaries=return_summaries(user))


def register(app: Flask, appbuilder: AppBuilder) -> None:
    """The home view is installed by Flask-AppBuilder through FAB_INDEX_VIEW."""

"""The notification list, the preferences page and the unread count of the navigation bar."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import get_locale
from flask_babel import gettext as _

from app.core.errors import ValidationFailed
from app.notifications.forms import PreferencesForm
from app.notifications.models import LANGUAGES
from app.notifications.operations import (
    facts_for,
    mark_read,
    notifications_page,
    preferences_of,
    save_preferences,
    unread_count,
)
from app.notifications.rendering import sentence
from app.organisation.context import current_user_context
from app.portal.access import login_required, require_user
from app.portal.paging import requested_page


def _language() -> str:
    code = str(get_locale() or "fr")[:2]
    return code if code in LANGUAGES else "fr"


class NotificationView(BaseView):
    route_base = "/notifications"
    default_view = "index"

    @expose("/")
    @login_required
    def index(self) -> Any:
        user = require_user()
        page = requested_page()
        size = int(current_app.config["BASKET_PAGE_SIZE"])
        rows, total = notifications_page(user.user_id, page, size)
        language = _language()
        items = []
        for row in rows:
            facts = facts_for(row, language, viewer=user)
            items.append((row, sentence(language, facts), facts.hidden))
        return self.render_template(
            "notifications/list.html", items=items, total=total, page=page, pages=max(1, -(-total // size)),
        )

    @expose("/read", methods=["POST"])
    @login_required
    def read(self) -> Any:
        user = require_user()
        chosen = request.form.get("notification_id", type=int)
        mark_read(user, None if chosen is None else [chosen])
        target = request.form.get("next") or ""
        if chosen is not None and target.startswith("/mail/"):
            return redirect(target)
        return redirect(url_for("NotificationView.index"))

    @expose("/preferences", methods=["GET", "POST"])
    @login_required
    def preferences(self) -> Any:
        user = require_user()
        form = PreferencesForm()
        if request.method == "GET":
            current = preferences_of([user.user_id])[user.user_id]
            form.language.data = current.language
            form.email_mode.data = current.email_mode
            form.muted_events.data = list(current.muted_events)
        elif form.validate_on_submit():
            try:
                save_preferences(user, form.language.data, form.email_mode.data, form.muted_events.data or [])
            except ValidationFailed as failure:
                flash(failure.message, "danger")
            else:
                flash(_("Notification preferences saved."), "success")
                return redirect(url_for("NotificationView.preferences"))
        else:
            flash(_("Some values are invalid: correct the fields marked in red."), "danger")
        return self.render_template("notifications/preferences.html", form=form)


def unread_notification_count() -> int:
    user = current_user_context()
    return unread_count(user.user_id) if user is not None else 0


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(NotificationView())
    app.jinja_env.globals["unread_notification_count"] = unread_notification_count

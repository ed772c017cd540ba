"""Administration screen "try the rules on a sample mail": outcome and trace, nothing registered."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_appbuilder import AppBuilder, BaseView, expose

from app.configuration.operations import current_configuration
from app.core.errors import PermissionDenied
from app.portal.access import login_required, require_user
from app.routing.engine import SampleMail
from app.routing.samples import summarise


def _fields_from_text(text: str) -> dict[str, str]:
    """Read custom field values typed one per line as ``id = value``."""
    values = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            if key.strip():
                values[key.strip()] = value.strip()
    return values


class RoutingAdminView(BaseView):
    route_base = "/admin/routing"

    @expose("/try", methods=["GET", "POST"])
    @login_required
    def try_rules(self) -> Any:
        from app.mail.views import locale_code

        user = require_user()
        if not user.can("administer"):
            raise PermissionDenied()
        configuration = current_configuration()
        form = request.form if request.method == "POST" else request.args
        summary = None
        if request.method == "POST":
            sample = SampleMail(
                mail_type=form.get("mail_type") or "",
                subject=form.get("subject") or "",
                channel=form.get("channel") or "post",
                priority=form.get("priority") or "normal",
                sender_kind=form.get("sender_kind") or None,
                sender_organisation=form.get("sender_organisation") or None,
                sender_email=form.get("sender_email") or None,
                fields=_fields_from_text(form.get("fields") or ""),
            )
            summary = summarise(configuration, sample)
        return self.render_template(
            "routing/try.html", configuration=configuration, values=form, summary=summary, locale=locale_code(),
        )


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(RoutingAdminView())

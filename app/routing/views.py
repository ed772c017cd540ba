"""Administration screen "try the rules on a sample mail": outcome and trace, nothing registered."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_appbuilder import AppBuilder, BaseView, expose

from app.configuration.operations import current_configuration
from app.core.errors import PermissionDenied
from app.mail.forms import CHANNEL_CHOICES, KIND_CHOICES, PRIORITY_CHOICES
from app.portal.access import login_required, require_user
from app.routing.engine import SampleMail
from app.routing.operations import comparable_fields
from app.routing.samples import summarise


def _fields_from_text(text: str, spec: Any) -> tuple[dict[str, str], list[str]]:
    """Read custom field values typed one per line as ``id = value``; return them and the lines not read.

    A line is not read when it has no "=", no id before it, or an id that the mail type ``spec`` does not declare.
    """
    values, ignored = {}, []
    for line in text.splitlines():
        key, separator, value = line.partition("=")
        if not line.strip():
            continue
        if not separator or not key.strip() or spec is None or spec.field(key.strip()) is None:
            ignored.append(line.strip())
            continue
        values[key.strip()] = value.strip()
    return values, ignored


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
        ignored: list[str] = []
        if request.method == "POST":
            fields, ignored = _fields_from_text(form.get("fields") or "", configuration.mail_types.get(form.get("mail_type") or ""))
            sample = SampleMail(
                mail_type=form.get("mail_type") or "",
                subject=form.get("subject") or "",
                channel=form.get("channel") or "post",
                priority=form.get("priority") or "normal",
                sender_kind=form.get("sender_kind") or None,
                sender_organisation=form.get("sender_organisation") or None,
                sender_email=form.get("sender_email") or None,
                fields=comparable_fields(configuration.mail_types.get(form.get("mail_type") or ""), fields, locale_code()),
            )
            summary = summarise(configuration, sample)
        return self.render_template(
            "routing/try.html", configuration=configuration, values=form, summary=summary, locale=locale_code(),
            ignored=ignored, channels=CHANNEL_CHOICES, priorities=PRIORITY_CHOICES, kinds=KIND_CHOICES,
        )


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(RoutingAdminView())

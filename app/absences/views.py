"""The absences page: declare an absence with a delegate, and open the baskets one stands in for."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import gettext as _

from app.absences.operations import absences_of, cancel_absence, declare_absence, delegator_contexts
from app.configuration.operations import current_configuration
from app.core.errors import ValidationFailed
from app.core.parsing import ParseError, parse_date, parse_row_id
from app.mail.baskets import may_open_basket
from app.portal.access import login_required, require_user


def _date(name: str, errors: dict[str, list[str]]) -> date | None:
    text = (request.form.get(name) or "").strip()
    if not text:
        return None
    try:
        return parse_date(text)
    except ParseError:
        errors[name] = [_("Invalid date: use the format dd/mm/yyyy, e.g. 31/12/2026.")]
        return None


class AbsenceView(BaseView):
    route_base = "/absences"
    default_view = "index"

    @expose("/", methods=["GET", "POST"])
    @login_required
    def index(self) -> Any:
        from app.mail.views import _assignee_choices, locale_code

        user = require_user()
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            starts_on, ends_on = _date("starts_on", errors), _date("ends_on", errors)
            delegate = (request.form.get("delegate_id") or "").strip()
            try:
                if errors:
                    raise ValidationFailed(errors)
                declare_absence(user, starts_on, ends_on, parse_row_id(delegate))
            except ValidationFailed as failure:
                errors = failure.field_errors
                flash(failure.message, "danger")
            else:
                flash(_("Absence recorded: your delegate sees your baskets during it."), "success")
                return redirect(url_for("AbsenceView.index"))

        configuration = current_configuration()
        standing_in_for = [
            (context, [basket for basket in configuration.baskets.values() if may_open_basket(basket, context)])
            for context in delegator_contexts(user)
        ]
        return self.render_template(
            "absences/index.html", absences=absences_of(user.user_id), user=user, errors=errors,
            values=request.form, choices=[item for item in _assignee_choices() if item[0] != str(user.user_id)],
            standing_in_for=standing_in_for, locale=locale_code(),
        )

    @expose("/<int:absence_id>/cancel", methods=["POST"])
    @login_required
    def cancel(self, absence_id: int) -> Any:
        cancel_absence(require_user(), absence_id)
        flash(_("Absence cancelled."), "success")
        return redirect(url_for("AbsenceView.index"))


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(AbsenceView())

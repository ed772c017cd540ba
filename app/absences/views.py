"""The absences page: declare an absence with a delegate, and open the baskets one stands in for."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import gettext as _

from app.absences.operations import (
    absences_of,
    cancel_absence,
    declare_absence,
    delegator_contexts,
    managed_user_ids,
)
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
            # A head of department may declare the absence of an agent of their departments, for example when ill.
            absent = parse_row_id(request.form.get("absent_user_id")) or user.user_id
            try:
                if errors:
                    raise ValidationFailed(errors)
                declare_absence(user, starts_on, ends_on, parse_row_id(delegate), absent)
            except ValidationFailed as failure:
                errors = failure.field_errors
                flash(failure.message, "danger")
            else:
                if absent == user.user_id:
                    flash(_("Absence recorded: your delegate sees your baskets during it."), "success")
                else:
                    flash(_("Absence recorded: the delegate sees this agent's baskets during it."), "success")
                return redirect(url_for("AbsenceView.index"))

        configuration = current_configuration()
        standing_in_for = [
            (context, [basket for basket in configuration.baskets.values() if may_open_basket(basket, context)])
            for context in delegator_contexts(user)
        ]
        people = _assignee_choices()
        managed = managed_user_ids(user)
        return self.render_template(
            "absences/index.html", absences=absences_of(user, managed), user=user, errors=errors,
            values=request.form, choices=[item for item in people if item[0]],
            absent_choices=[item for item in people if item[0] and int(item[0]) in managed] if len(managed) > 1 else [],
            managed=managed, standing_in_for=standing_in_for, locale=locale_code(),
        )

    @expose("/<int:absence_id>/cancel", methods=["POST"])
    @login_required
    def cancel(self, absence_id: int) -> Any:
        cancel_absence(require_user(), absence_id)
        flash(_("Absence cancelled."), "success")
        return redirect(url_for("AbsenceView.index"))


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(AbsenceView())

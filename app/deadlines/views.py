"""The deadline panel of a mail's page and the forms it posts: due date, missing documents."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from flask import Flask, flash, g, redirect, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import gettext as _

from app.configuration.operations import current_configuration
from app.core.errors import ValidationFailed
from app.core.parsing import ParseError, parse_date
from app.deadlines.calendar import get_calendar
from app.deadlines.forms import DocumentsReceivedForm, DueDateForm, IncompleteFileForm
from app.deadlines.operations import (
    can_manage_deadlines,
    change_due_date,
    declare_incomplete,
    implicit_decision_for,
    missing_documents_of,
    record_documents_received,
)
from app.mail.models import HistoryEntry, Mail
from app.organisation.context import UserContext, current_user_context
from app.portal.access import login_required, require_user
from app.reminders.operations import reminders_of

log = logging.getLogger(__name__)


def _date_or_error(text: str | None, field: str, errors: dict[str, list[str]]) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return parse_date(text)
    except ParseError:
        errors.setdefault(field, []).append(_("Invalid date: use the format dd/mm/yyyy, e.g. 31/12/2026."))
        return None


def _flash_failure(failure: ValidationFailed) -> None:
    details = " ".join(message for messages in failure.field_errors.values() for message in messages)
    flash(f"{failure.message} {details}".strip() if failure.field_errors else failure.message, "danger")


def _back(mail_id: int) -> Any:
    return redirect(url_for("MailView.detail", mail_id=mail_id) + "#deadlines")


class DeadlineView(BaseView):
    route_base = "/mail"

    def _page_with_form(self, user: UserContext, mail_id: int, name: str, form: Any) -> Any:
        """Show the mail page again with the rejected form ``name`` open and filled as it was sent (HTTP 400)."""
        from app.mail.views import mail_page_context

        g.estafette_rejected_deadline_form = (name, form)
        log.info("deadline form %s of mail %s rejected for user %s", name, mail_id, user.user_id)
        return self.render_template("mail/detail.html", **mail_page_context(user, mail_id)), 400

    @expose("/<int:mail_id>/due-date", methods=["POST"])
    @login_required
    def change_due_date(self, mail_id: int) -> Any:
        user = require_user()
        form = DueDateForm()
        errors: dict[str, list[str]] = {}
        new_date = _date_or_error(form.new_due_date.data, "new_due_date", errors)
        try:
            if not form.validate_on_submit() or errors or new_date is None:
                raise ValidationFailed(errors or {"new_due_date": [_("Give the new due date and the reason.")]})
            mail = change_due_date(user, mail_id, new_date, form.reason.data or "")
        except ValidationFailed as failure:
            _flash_failure(failure)
            return self._page_with_form(user, mail_id, "due_date_form", form)
        else:
            flash(_("Due date of %(chrono)s changed; its reminders are recomputed.", chrono=mail.chrono), "success")
            if not get_calendar(mail.handling_department.calendar).is_working_day(mail.due_date):
                flash(_("%(date)s is not a working day (weekend or public holiday): check the new due date.",
                        date=mail.due_date.strftime("%d/%m/%Y")), "warning")
        return _back(mail_id)

    @expose("/<int:mail_id>/incomplete", methods=["POST"])
    @login_required
    def declare_incomplete(self, mail_id: int) -> Any:
        user = require_user()
        form = IncompleteFileForm()
        errors: dict[str, list[str]] = {}
        deadline = _date_or_error(form.deadline.data, "deadline", errors)
        requested_on = _date_or_error(form.requested_on.data, "requested_on", errors)
        try:
            if not form.validate_on_submit() or errors or deadline is None:
                raise ValidationFailed(errors or {"documents": [_("List the missing documents and their deadline.")]})
            documents = (form.documents.data or "").splitlines()
            declare_incomplete(user, mail_id, documents, deadline, requested_on)
        except ValidationFailed as failure:
            _flash_failure(failure)
            return self._page_with_form(user, mail_id, "incomplete_form", form)
        else:
            flash(_("Missing documents requested: the legal delay is recomputed."), "success")
        return _back(mail_id)

    @expose("/<int:mail_id>/documents-received/<int:request_id>", methods=["POST"])
    @login_required
    def documents_received(self, mail_id: int, request_id: int) -> Any:
        user = require_user()
        form = DocumentsReceivedForm()
        errors: dict[str, list[str]] = {}
        received_on = _date_or_error(form.received_on.data, "received_on", errors)
        try:
            if not form.validate_on_submit() or errors:
                raise ValidationFailed(errors)
            record_documents_received(user, mail_id, request_id, received_on)
        except ValidationFailed as failure:
            _flash_failure(failure)
        else:
            flash(_("Arrival of the documents recorded: the legal delay is recomputed."), "success")
        return _back(mail_id)


def mail_deadlines(mail: Mail) -> dict[str, Any]:
    """Gather what the deadline panel of a mail's page shows."""
    user = current_user_context()
    configuration = current_configuration()
    spec = configuration.mail_types.get(mail.mail_type)
    panel: dict[str, Any] = {
        "decision": implicit_decision_for(mail, spec),
        "requests": missing_documents_of(mail.id),
        "reminders": reminders_of(mail.id),
        "can_manage": user is not None and can_manage_deadlines(user, mail)
        and mail.status not in configuration.closed_statuses,
        "due_date_form": DueDateForm(formdata=None),
        "incomplete_form": IncompleteFileForm(formdata=None),
        "received_form": DocumentsReceivedForm(formdata=None),
        "open_form": None,
    }
    # A form the same request rejected replaces its empty twin and is shown open.
    rejected = getattr(g, "estafette_rejected_deadline_form", None)
    if rejected is not None:
        name, form = rejected
        panel[name] = form
        panel["open_form"] = name
    return panel


def deadline_history_text(entry: HistoryEntry) -> str:
    """Describe the history entries written by deadlines and reminders; "" for other events."""
    details = entry.details or {}
    if entry.event == "due_date_changed":
        return _(
            "Due date changed from %(previous)s to %(new)s. Reason: %(reason)s",
            previous=_short(details.get("previous")), new=_short(details.get("new")), reason=details.get("reason", ""),
        )
    if entry.event == "marked_incomplete":
        return _(
            "Incomplete file: missing %(documents)s, to produce by %(deadline)s.",
            documents=", ".join(details.get("documents", [])), deadline=_short(details.get("deadline")),
        )
    if entry.event == "documents_received":
        return _("Missing documents received on %(date)s.", date=_short(details.get("received_on")))
    if entry.event == "reminder_sent":
        return _("Reminder sent (due date %(date)s).", date=_short(details.get("due_date")))
    if entry.event == "late_notice_sent":
        return _("Late notice sent (due date %(date)s).", date=_short(details.get("due_date")))
    return ""


def _short(value: str | None) -> str:
    return date.fromisoformat(value).strftime("%d/%m/%Y") if value else "—"


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(DeadlineView())
    app.jinja_env.globals["mail_deadlines"] = mail_deadlines
    app.jinja_env.globals["deadline_history_text"] = deadline_history_text

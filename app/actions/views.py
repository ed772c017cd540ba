"""Action forms of the mail page, bulk actions of basket lists, and the mail JSON API."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, flash, jsonify, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from app.actions.operations import (
    ActionInput,
    ActionNotAllowed,
    available_actions,
    missing_required_fields,
    perform_action,
    perform_bulk,
)
from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.core.errors import Conflict, PermissionDenied, ValidationFailed, message_without_form
from app.core.parsing import ParseError, parse_date, parse_row_id
from app.distribution.operations import distribution_of
from app.mail.baskets import basket_page, get_basket
from app.mail.models import Mail
from app.mail.visibility import can_see
from app.organisation.context import UserContext
from app.portal.access import login_required, require_user
from app.portal.paging import requested_page

log = logging.getLogger(__name__)


def action_input_from(values: MultiDict, locale: str) -> ActionInput:
    """Build an ActionInput from a submitted form or JSON object; raise ValidationFailed on a bad date."""
    due_text = (values.get("opinion_due_date") or "").strip()
    due = None
    if due_text:
        try:
            due = parse_date(due_text)
        except ParseError:
            raise ValidationFailed(
                {"opinion_due_date": [_("Invalid date: use the format dd/mm/yyyy, e.g. 31/12/2026.")]}
            ) from None
    return ActionInput(
        comment=values.get("comment") or None,
        department=values.get("department") or None,
        assignee_id=parse_row_id(values.get("assignee_id")),
        copy_user_ids=[user_id for item in values.getlist("copy_user_ids") if (user_id := parse_row_id(item)) is not None],
        copy_departments=[item for item in values.getlist("copy_departments") if item],
        opinion_user_id=parse_row_id(values.get("opinion_user_id")),
        opinion_department=values.get("opinion_department") or None,
        opinion_due_date=due,
        fields={key.removeprefix("field_"): value for key, value in values.items() if key.startswith("field_")},
        expected_version=parse_row_id(values.get("row_version")),
        locale=locale,
    )


def action_panel_context(user: UserContext, mail: Mail, configuration: Configuration, locale: str) -> dict[str, Any]:
    """Return what the mail page needs to show the distribution list and the action forms."""
    from app.mail.views import _assignee_choices, _department_choices

    actions = available_actions(user, mail, configuration)
    spec = configuration.mail_types.get(mail.mail_type)
    closing_fields = {
        action.id: [spec.field(item) for item in missing_required_fields(action, mail) if spec and spec.field(item)]
        for action in actions if action.required_fields
    }
    return {
        "actions": actions,
        "distribution": distribution_of(mail.id),
        "user_choices": _assignee_choices(),
        "department_choices": _department_choices(locale),
        "closing_fields": closing_fields,
    }


@dataclass(frozen=True)
class FailedAction:
    """An action whose form was rejected: its id, the values sent and the message to show in the form."""

    action_id: str
    form: MultiDict[str, str]
    message: str


class ActionView(BaseView):
    route_base = "/mail"

    @expose("/<int:mail_id>/action/<action_id>", methods=["POST"])
    @login_required
    def run(self, mail_id: int, action_id: str) -> Any:
        """Run one action from the mail page; refusals other than 403/404 come back as a message on the page."""
        from app.mail.views import locale_code, mail_page_context

        user = require_user()
        locale = locale_code()
        try:
            result = perform_action(user, mail_id, action_id, action_input_from(request.form, locale))
        except ValidationFailed as failure:
            # The page comes back with the action's form open and filled as it was sent, and its messages.
            log.info("action %s on mail %s by %s rejected: %s", action_id, mail_id, user.user_id,
                     message_without_form(failure))
            failed = FailedAction(action_id, request.form, message_without_form(failure))
            context = mail_page_context(user, mail_id)
            if action_id not in {action.id for action in context["actions"]}:
                # The action is no longer offered, so its form, where the message goes, is not on the page.
                flash(failed.message, "danger")
            return self.render_template("mail/detail.html", **context, failed_action=failed), 400
        except (Conflict, ActionNotAllowed) as refusal:
            flash(refusal.message, "warning")
        else:
            flash(_("Done: %(action)s.", action=result.action.labels.get(locale)), "success")
            if not can_see(user, result.mail):
                flash(_("You no longer have access to this mail."), "info")
                return redirect(url_for("HomeView.index"))
        return redirect(url_for("MailView.detail", mail_id=mail_id))

    @expose("/basket/<basket_id>/bulk", methods=["POST"])
    @login_required
    def bulk(self, basket_id: str) -> Any:
        """Run a bulk action on the mails ticked in a basket list and show the report."""
        from app.mail.views import locale_code

        user = require_user()
        configuration = current_configuration()
        basket = get_basket(configuration, basket_id, user)
        action_id = request.form.get("action_id") or ""
        if action_id not in basket.actions:
            raise PermissionDenied()
        locale = locale_code()
        mail_ids = [mail_id for item in request.form.getlist("mail_ids") if (mail_id := parse_row_id(item)) is not None]
        if not mail_ids:
            flash(_("Tick at least one mail."), "warning")
            return redirect(url_for("MailView.basket", basket_id=basket_id))
        data = ActionInput(comment=request.form.get("comment") or None, locale=locale)
        report = perform_bulk(user, action_id, mail_ids, data)
        return self.render_template(
            "actions/bulk_report.html", report=report, basket=basket, locale=locale,
        )


class MailApi(BaseView):
    """JSON access to mail under the same visibility rule and the same operations as the pages."""

    route_base = "/api/mail"

    @expose("/<int:mail_id>")
    @login_required
    def get(self, mail_id: int) -> Any:
        from app.mail.views import load_visible_mail

        user = require_user()
        mail = load_visible_mail(user, mail_id)
        configuration = current_configuration()
        return jsonify(
            {
                "id": mail.id,
                "chrono": mail.chrono,
                "mail_type": mail.mail_type,
                "subject": mail.subject,
                "status": mail.status,
                "confidential": mail.confidential,
                "priority": mail.priority,
                "arrival_date": mail.arrival_date.isoformat(),
                "due_date": mail.due_date.isoformat() if mail.due_date else None,
                "handling_department": mail.handling_department.code,
                "assignee_id": mail.assignee_id,
                "row_version": mail.row_version,
                "actions": [action.id for action in available_actions(user, mail, configuration)],
                "attachments": [
                    {"id": item.id, "name": item.display_name, "size": item.size} for item in mail.attachments
                ],
            }
        )

    @expose("/<int:mail_id>/actions/<action_id>", methods=["POST"])
    @login_required
    def act(self, mail_id: int, action_id: str) -> Any:
        """Run one action; the body is a JSON object with the keys of the mail page's action form."""
        payload = request.get_json(silent=True) or {}
        values = MultiDict()
        for key, value in payload.items():
            for item in value if isinstance(value, list) else [value]:
                values.add(key, "" if item is None else str(item))
        user = require_user()
        result = perform_action(user, mail_id, action_id, action_input_from(values, payload.get("locale", "fr")))
        return jsonify({"id": result.mail.id, "status": result.mail.status, "row_version": result.mail.row_version,
                        "on_behalf_of_id": result.on_behalf_of_id})

    @expose("/basket/<basket_id>")
    @login_required
    def basket(self, basket_id: str) -> Any:
        from flask import current_app

        user = require_user()
        page = requested_page()
        result = basket_page(user, current_configuration(), basket_id, page, current_app.config["BASKET_PAGE_SIZE"])
        return jsonify(
            {
                "basket": basket_id,
                "total": result.total,
                "page": result.page,
                "items": [
                    {"id": mail.id, "chrono": mail.chrono, "subject": mail.subject, "status": mail.status,
                     "due_date": mail.due_date.isoformat() if mail.due_date else None,
                     "unread": mail.id in result.unread_ids}
                    for mail in result.items
                ],
            }
        )


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(ActionView())
    appbuilder.add_view_no_menu(MailApi())

"""The search page (one box in the header), its filters and facets, and saved searches."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.configuration.operations import current_configuration
from app.core.errors import ValidationFailed
from app.extensions import db
from app.organisation.models import Department
from app.portal.access import login_required, require_user
from app.search.criteria import DUE_BANDS, SearchRequest
from app.search.models import OutboxEvent
from app.search.operations import attachments_awaiting_ocr, delete_saved_search, save_search, saved_searches, search

log = logging.getLogger(__name__)

SORT_LABELS = {"relevance": _l("Relevance"), "date_desc": _l("Newest first"), "date_asc": _l("Oldest first")}
DUE_LABELS = {"overdue": _l("Overdue"), "week": _l("Due within 7 days"), "later": _l("Due later"), "none": _l("No due date")}


def _facet_labels(locale: str) -> dict[str, dict[str, str]]:
    configuration = current_configuration()
    departments = db.session.execute(select(Department.id, Department.code)).all()
    return {
        "mail_type": {key: spec.labels.get(locale) for key, spec in configuration.mail_types.items()},
        "status": {key: spec.labels.get(locale) for key, spec in configuration.statuses.items()},
        "category": {"incoming": _("Incoming mail"), "outgoing": _("Outgoing mail"), "internal": _("Internal memos")},
        "department": {str(row.id): row.code for row in departments},
    }


class SearchView(BaseView):
    route_base = "/search"
    default_view = "index"

    @expose("/")
    @login_required
    def index(self) -> Any:
        user = require_user()
        locale = str(get_locale() or "fr")
        from flask import current_app

        search_request, errors = SearchRequest.from_args(request.args, page_size=int(current_app.config["SEARCH_PAGE_SIZE"]))
        result = search(user, search_request) if not errors else None
        department_codes = {str(row.id): row.code for row in db.session.execute(select(Department.id, Department.code))}
        return self.render_template(
            "search/index.html",
            search_request=search_request,
            errors=errors,
            result=result,
            locale=locale,
            facet_labels=_facet_labels(locale),
            department_codes=department_codes,
            sort_labels={key: str(label) for key, label in SORT_LABELS.items()},
            due_labels={key: str(DUE_LABELS[key]) for key in DUE_BANDS},
            saved=saved_searches(user),
            awaiting_ocr=attachments_awaiting_ocr(user) if result is not None and search_request.text.strip() else 0,
            query_string=urlencode(search_request.to_args(page=None), doseq=True),
        )

    @expose("/saved", methods=["POST"])
    @login_required
    def save(self) -> Any:
        user = require_user()
        query_string = request.form.get("query_string", "")
        try:
            save_search(user, request.form.get("name", ""), query_string)
        except ValidationFailed as failure:
            for messages in failure.field_errors.values():
                for message in messages:
                    flash(message, "danger")
        else:
            flash(_("Search saved."), "success")
        return redirect(url_for("SearchView.index") + ("?" + query_string if query_string else ""))

    @expose("/saved/<int:saved_id>/delete", methods=["POST"])
    @login_required
    def delete(self, saved_id: int) -> Any:
        delete_saved_search(require_user(), saved_id)
        flash(_("Saved search deleted."), "success")
        return redirect(url_for("SearchView.index"))


def _drain_after_write(response: Response) -> Response:
    """Index the changes a form submission made, so its author finds them at once.

    A failure leaves the changes in the outbox for the next drain and never
    changes the response.
    """
    if request.method != "POST" or response.status_code >= 400:
        return response
    try:
        pending = db.session.execute(
            select(OutboxEvent.id).where(OutboxEvent.processed_at.is_(None), OutboxEvent.entity == "mail").limit(1)
        ).first()
        if pending is not None:
            from app.search.indexer import drain

            drain(max_batches=1, ocr=False)
    except Exception:  # noqa: BLE001 - indexing must never break the request that wrote the mail.
        db.session.rollback()
        log.exception("search indexing after %s %s failed; the outbox keeps the changes", request.method, request.path)
    return response


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SearchView())
    app.after_request(_drain_after_write)

"""The scheduler page for administrators: lease holder, jobs, queues."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import lazy_gettext as _l

from app.core.errors import PermissionDenied
from app.portal.access import login_required, require_user
from app.scheduler.runner import scheduler_status

JOB_LABELS = {
    "send_reminders": _l("Reminders"),
    "queue_digests": _l("Daily digests"),
    "deliver_email": _l("Sending of e-mail"),
    "index_search_outbox": _l("Search index"),
    "recognise_attachments": _l("Text recognition of scanned letters"),
    "sweep_content_store": _l("Deletion of files no mail uses"),
    "forget_registration_submissions": _l("Deletion of the day-old tokens of registration forms"),
}
MODE_LABELS = {
    "in-process": _l("in the portal's processes"),
    "external": _l("in a separate process (flask scheduler run)"),
    "off": _l("off: no job runs from the portal"),
}
# The counts of a job's summary, as the jobs write them ("sent: 3, cancelled: 1").
SUMMARY_LABELS = {
    "sent": _l("sent"), "cancelled": _l("cancelled"), "retried": _l("to retry"), "failed": _l("failed"),
    "indexed": _l("indexed"), "deleted": _l("deleted"), "recognised": _l("recognised"), "digests": _l("digests"),
    "remaining": _l("left for the next passes"),
}


def summary_text(summary: str | None) -> str:
    """Return a job's stored summary with its counts named in the user's language."""
    parts = []
    for part in (summary or "").split(", "):
        key, separator, value = part.partition(": ")
        if separator and key in SUMMARY_LABELS:
            part = str(_l("%(name)s: %(value)s", name=SUMMARY_LABELS[key], value=value))
        parts.append(part)
    return ", ".join(part for part in parts if part)


class SchedulerView(BaseView):
    route_base = "/scheduler"
    default_view = "index"

    @expose("/")
    @login_required
    def index(self) -> Any:
        user = require_user()
        if not user.can("administer"):
            raise PermissionDenied()
        return self.render_template(
            "scheduler/status.html", status=scheduler_status(current_app), job_labels=JOB_LABELS,
            mode_labels=MODE_LABELS, summary_text=summary_text,
        )


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SchedulerView())

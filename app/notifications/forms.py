"""The notification preferences form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, SelectMultipleField
from wtforms.widgets import CheckboxInput, ListWidget

EVENT_LABELS = {
    "mail_assigned": _l("Mail assigned to me"),
    "copy_received": _l("Copy received"),
    "opinion_requested": _l("Opinion requested from me"),
    "opinion_given": _l("Opinion given"),
    "reminder_due": _l("Reminder due"),
    "mail_late": _l("Mail late"),
    "delegation_started": _l("Absence delegation started"),
    "signature_requested": _l("Document waiting for my approval or signature"),
    "signature_returned": _l("Document sent back to me in the signature book"),
    "document_signed": _l("Document signed"),
}


class PreferencesForm(FlaskForm):
    language = SelectField(_l("Language of e-mail"), choices=[("fr", "Français"), ("en", "English")])
    email_mode = RadioField(
        _l("E-mail"),
        choices=[
            ("immediate", _l("One e-mail per notification")),
            ("digest", _l("One e-mail a day with all notifications (daily digest)")),
            ("off", _l("No e-mail: notifications in the portal only")),
        ],
    )
    muted_events = SelectMultipleField(
        _l("Events never sent by e-mail"),
        choices=list(EVENT_LABELS.items()),
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
    )

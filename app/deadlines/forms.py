"""Forms of the deadline panel on a mail's page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

DATE_PLACEHOLDER = _l("dd/mm/yyyy")


class DueDateForm(FlaskForm):
    new_due_date = StringField(_l("New due date"), validators=[DataRequired()], render_kw={"placeholder": DATE_PLACEHOLDER})
    reason = TextAreaField(_l("Reason for the change"), validators=[DataRequired(), Length(max=1000)])


class IncompleteFileForm(FlaskForm):
    documents = TextAreaField(_l("Missing documents, one per line"), validators=[DataRequired(), Length(max=10000)])
    deadline = StringField(_l("Deadline to produce them"), validators=[DataRequired()], render_kw={"placeholder": DATE_PLACEHOLDER})
    requested_on = StringField(_l("Date of the request (today if empty)"), validators=[Optional()], render_kw={"placeholder": DATE_PLACEHOLDER})


class DocumentsReceivedForm(FlaskForm):
    received_on = StringField(_l("Date of receipt (today if empty)"), validators=[Optional()], render_kw={"placeholder": DATE_PLACEHOLDER})

"""Registration forms, generated per mail type from its declaration.

Dates and numbers are text inputs parsed on the server (day-first dates,
French amounts), so the value an agent typed is shown back unchanged when the
form is redisplayed with errors: no date picker re-reads it another way.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    MultipleFileField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from app.configuration.specs import FieldSpec, MailTypeSpec

DATE_PLACEHOLDER = _l("dd/mm/yyyy")

CHANNEL_CHOICES = [
    ("post", _l("Post (scanned letter)")),
    ("email", _l("E-mail")),
    ("web", _l("Web form")),
    ("hand", _l("Delivered by hand")),
    ("internal", _l("Internal")),
]
# Outgoing mail leaves the prefecture: no letter to scan on its way in.
OUTGOING_CHANNEL_CHOICES = [("post", _l("Post")), *CHANNEL_CHOICES[1:]]
PRIORITY_CHOICES = [
    ("normal", _l("Normal")),
    ("urgent", _l("Urgent")),
    ("very_urgent", _l("Very urgent")),
]
CIVILITY_CHOICES = [("", "—"), ("Mme", "Mme"), ("M.", "M."), ("Me", "Me"), ("Dr", "Dr")]
KIND_CHOICES = [("person", _l("Person")), ("organisation", _l("Organisation"))]


class RegistrationFormBase(FlaskForm):
    subject = TextAreaField(
        _l("Subject"), validators=[Length(max=1000)], render_kw={"rows": 2, "data-required": "1"}
    )
    arrival_date = StringField(
        _l("Arrival date"),
        description=_l("Day the mail reached the prefecture; today when left empty."),
        render_kw={"placeholder": DATE_PLACEHOLDER, "inputmode": "numeric", "autocomplete": "off"},
    )
    letter_date = StringField(
        _l("Date of the letter"),
        description=_l("Date written on the letter, if any."),
        render_kw={"placeholder": DATE_PLACEHOLDER, "inputmode": "numeric", "autocomplete": "off"},
    )
    channel = SelectField(_l("Channel"), choices=CHANNEL_CHOICES)
    priority = SelectField(_l("Priority"), choices=PRIORITY_CHOICES)
    confidential = BooleanField(
        _l("Confidential"), description=_l("Only its distribution list (assignee, copies, opinions), the registering agent and administrators will see it.")
    )
    handling_department = SelectField(
        _l("Handling department"), choices=[],
        description=_l("If you keep this choice, the routing rules choose the department; choose one only to override them."),
    )
    assignee_id = SelectField(_l("Assignee"), choices=[], validators=[Optional()])

    correspondent_id = HiddenField()
    # Set when the page is built and sent back with the form, so that the form registers one mail.
    submission_token = HiddenField()
    correspondent_search = StringField(
        _l("Search the directory"),
        description=_l("Type a few letters of a name, an organisation, an e-mail or a phone number."),
        render_kw={"autocomplete": "off"},
    )
    correspondent_kind = SelectField(_l("Kind"), choices=KIND_CHOICES, default="person")
    correspondent_civility = SelectField(_l("Civility"), choices=CIVILITY_CHOICES, validators=[Optional()])
    correspondent_first_name = StringField(_l("First name"), validators=[Length(max=120)])
    correspondent_last_name = StringField(_l("Last name"), validators=[Length(max=120)])
    correspondent_organisation = StringField(_l("Organisation"), validators=[Length(max=255)])
    correspondent_email = StringField(_l("E-mail"), validators=[Length(max=320)])
    correspondent_phone = StringField(_l("Phone"), validators=[Length(max=40)])
    correspondent_address = TextAreaField(_l("Address"), render_kw={"rows": 2})
    correspondent_postcode = StringField(_l("Postcode"), validators=[Length(max=12)])
    correspondent_city = StringField(_l("City"), validators=[Length(max=120)])
    correspondent_confirm_new = BooleanField(_l("Create a new entry anyway: this is another correspondent"))

    attachments = MultipleFileField(
        _l("Attachments"),
        description=_l("Scanned letter (PDF), images, .eml, .docx or .odt files."),
    )


def _custom_field(spec: FieldSpec, locale: str) -> Field:
    label = spec.labels.get(locale)
    description = spec.help.get(locale) if spec.help else ""
    required = {"data-required": "1"} if spec.required else {}
    if spec.type == "text":
        return TextAreaField(label, description=description, render_kw={"rows": 3, **required})
    if spec.type == "boolean":
        return BooleanField(label, description=description)
    if spec.type == "choice":
        choices: list[Any] = [("", "—")] + [(choice.value, choice.labels.get(locale)) for choice in spec.choices]
        return SelectField(label, description=description, choices=choices, validators=[Optional()], render_kw=required)
    render_kw: dict[str, Any] = {"autocomplete": "off", **required}
    if spec.type == "date":
        render_kw.update(placeholder=str(DATE_PLACEHOLDER), inputmode="numeric")
    elif spec.type in ("decimal", "integer"):
        render_kw.update(inputmode="decimal" if spec.type == "decimal" else "numeric")
        if spec.unit:
            render_kw["data-unit"] = spec.unit
    elif spec.type == "email":
        render_kw["type"] = "email"
    return StringField(label, description=description, render_kw=render_kw)


def build_registration_form(spec: MailTypeSpec, locale: str) -> type[RegistrationFormBase]:
    """Return a form class with the common fields and ``spec``'s own fields named ``field_<id>``."""
    attributes: dict[str, Any] = {f"field_{item.id}": _custom_field(item, locale) for item in spec.fields}
    if spec.category == "outgoing":
        attributes["arrival_date"] = StringField(
            _l("Sending date"),
            description=_l("Day the mail leaves the prefecture; today when left empty."),
            render_kw=RegistrationFormBase.arrival_date.kwargs["render_kw"],
        )
        attributes["channel"] = SelectField(_l("Channel"), choices=OUTGOING_CHANNEL_CHOICES)
    return type(f"RegistrationForm_{spec.id}", (RegistrationFormBase,), attributes)


def custom_field_names(spec: MailTypeSpec) -> list[tuple[str, FieldSpec]]:
    return [(f"field_{item.id}", item) for item in spec.fields]

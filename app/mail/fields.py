"""Validation of a mail type's custom fields, on every write.

Values are stored in the mail's JSON column in a portable form: decimals as
strings ("12345.50"), dates as ISO strings, integers and booleans as such,
choices by their stable value.  Removing a field from the schema keeps the
values already stored.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_decimal as babel_format_decimal
from flask_babel import gettext as _

from app.configuration.specs import FieldSpec, MailTypeSpec
from app.core.parsing import ParseError, format_decimal, parse_date, parse_decimal

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TEXT_LENGTH = 20000


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def clean_field_values(
    spec: MailTypeSpec, raw: dict[str, Any], locale: str = "fr"
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Return (stored values, errors by field id) for ``raw`` input of ``spec``'s fields.

    Keys that the type does not declare are rejected, so a typo in an API call
    does not silently drop data.
    """
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key in raw:
        if spec.field(key) is None:
            errors.setdefault(key, []).append(_("Unknown field for this mail type."))

    for field_spec in spec.fields:
        value = raw.get(field_spec.id)
        if _is_empty(value) or (field_spec.type == "boolean" and value is None):
            if field_spec.required and field_spec.type != "boolean":
                errors.setdefault(field_spec.id, []).append(_("This field is required."))
            continue
        try:
            values[field_spec.id] = _clean_value(field_spec, value, locale)
        except FieldInvalid as exc:
            errors.setdefault(field_spec.id, []).append(str(exc))
    return values, errors


class FieldInvalid(ValueError):
    pass


def _clean_value(spec: FieldSpec, value: Any, locale: str) -> Any:
    cleaner = _CLEANERS[spec.type]
    return cleaner(spec, value, locale)


def _clean_string(spec: FieldSpec, value: Any, locale: str) -> str:
    text = str(value).strip()
    limit = spec.max_length or (MAX_TEXT_LENGTH if spec.type == "text" else 255)
    if len(text) > limit:
        raise FieldInvalid(_("At most %(limit)s characters.", limit=limit))
    if spec.pattern and not re.fullmatch(spec.pattern, text):
        if spec.pattern_message:
            raise FieldInvalid(spec.pattern_message.get(locale))
        raise FieldInvalid(_("Invalid format."))
    return text


def _clean_email(spec: FieldSpec, value: Any, locale: str) -> str:
    text = str(value).strip()
    if not EMAIL_PATTERN.match(text):
        raise FieldInvalid(_("Invalid e-mail address."))
    return text


def _check_range(spec: FieldSpec, number: Decimal, locale: str) -> None:
    """Raise FieldInvalid when ``number`` is outside the field's limits, written as the locale writes numbers."""

    def written(limit: Any) -> str:
        if spec.type == "decimal":
            return format_decimal(Decimal(limit), locale)
        return babel_format_decimal(limit, format="#,##0", locale=locale)

    if spec.min is not None and number < spec.min:
        raise FieldInvalid(_("The value must be at least %(limit)s.", limit=written(spec.min)))
    if spec.max is not None and number > spec.max:
        raise FieldInvalid(_("The value must be at most %(limit)s.", limit=written(spec.max)))


# The largest amount a decimal field takes, whatever its declared limits: far above any sum a mail
# names, and far below the 28 digits past which a decimal cannot be rounded to cents.
MAX_AMOUNT = Decimal("999999999999999.99")


def _clean_decimal(spec: FieldSpec, value: Any, locale: str) -> str:
    # The example follows the rule parse_decimal() applies in this locale, the only one accepted here.
    example = "12 345,50" if locale.lower().startswith("fr") else "12,345.50"
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    else:
        try:
            number = parse_decimal(str(value), locale)
        except ParseError:
            raise FieldInvalid(_("Invalid amount: write it as %(example)s.", example=example)) from None
    if not number.is_finite():
        raise FieldInvalid(_("Invalid amount."))
    # Amounts are stored in cents: rounding 1 234,567 would store a value other than the one typed.
    if number.normalize().as_tuple().exponent < -2:
        raise FieldInvalid(_("An amount has at most two decimals: write it as %(example)s.", example=example))
    _check_range(spec, number, locale)
    if abs(number) > MAX_AMOUNT:
        if number > 0:
            raise FieldInvalid(_("The value must be at most %(limit)s.", limit=format_decimal(MAX_AMOUNT, locale)))
        raise FieldInvalid(_("The value must be at least %(limit)s.", limit=format_decimal(-MAX_AMOUNT, locale)))
    return str(number.quantize(Decimal("0.01")))


def _clean_integer(spec: FieldSpec, value: Any, locale: str) -> int:
    if isinstance(value, bool):
        raise FieldInvalid(_("A whole number is expected."))
    text = str(value).strip().replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    try:
        number = int(text)
    except ValueError:
        raise FieldInvalid(_("A whole number is expected.")) from None
    _check_range(spec, Decimal(number), locale)
    return number


def _clean_date(spec: FieldSpec, value: Any, locale: str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    try:
        return parse_date(str(value)).isoformat()
    except ParseError as error:
        raise FieldInvalid(date_error_message(error)) from None


def date_error_message(error: ParseError) -> str:
    """Return the message of a date that parse_date() rejected: a day that does not exist, or another format."""
    if error.code == "nonexistent_date":
        return _("The date %(date)s does not exist: check the day and the month.", date=error.value.strip())
    return _("Invalid date: use the format dd/mm/yyyy, e.g. 31/12/2026.")


def _clean_boolean(spec: FieldSpec, value: Any, locale: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"y", "yes", "true", "on", "1", "oui"}:
        return True
    if text in {"n", "no", "false", "off", "0", "non", ""}:
        return False
    raise FieldInvalid(_("Yes or no is expected."))


def _clean_choice(spec: FieldSpec, value: Any, locale: str) -> str:
    allowed = {choice.value for choice in spec.choices}
    text = str(value).strip()
    if text not in allowed:
        raise FieldInvalid(_("Choose one of the proposed values."))
    return text


_CLEANERS = {
    "string": _clean_string,
    "text": _clean_string,
    "email": _clean_email,
    "decimal": _clean_decimal,
    "integer": _clean_integer,
    "date": _clean_date,
    "boolean": _clean_boolean,
    "choice": _clean_choice,
}


def display_value(spec: FieldSpec | None, stored: Any, locale: str) -> str:
    """Return a stored value written for display in ``locale``."""
    from app.core.parsing import format_date_fr, format_decimal

    if stored is None:
        return ""
    if spec is None:
        return str(stored)
    if spec.type == "decimal":
        try:
            text = format_decimal(Decimal(str(stored)), locale)
        except (InvalidOperation, ValueError):
            return str(stored)
        return f"{text} €" if spec.unit == "EUR" else text
    if spec.type == "date":
        try:
            return format_date_fr(date.fromisoformat(str(stored)))
        except ValueError:
            return str(stored)
    if spec.type == "boolean":
        return _("Yes") if stored else _("No")
    if spec.type == "choice":
        for choice in spec.choices:
            if choice.value == stored:
                return choice.labels.get(locale)
    return str(stored)

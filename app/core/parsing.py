"""Parsing and formatting of user-typed amounts, dates and text for search keys.

The functions here are pure so they can be tested without an application.
Parsing errors raise :class:`ParseError`, whose ``code`` the web layer
translates into a form message.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation

from babel.numbers import format_decimal as babel_format_decimal

__all__ = [
    "ParseError",
    "fold_for_match",
    "format_date_fr",
    "format_decimal",
    "normalise_text",
    "parse_date",
    "parse_decimal",
]


class ParseError(ValueError):
    """Invalid user input, with a stable ``code`` and the rejected ``value``."""

    def __init__(self, code: str, value: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.value = value


# --- Amounts -------------------------------------------------------------

# French group separators: space, no-break space (U+00A0) and narrow
# no-break space (U+202F, which Babel 2.19 outputs for "fr").
_FRENCH_AMOUNT = re.compile(
    r"(?P<sign>[-+]?)"
    r"(?P<integer>[0-9]+|[0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+)"
    r"(?:,(?P<fraction>[0-9]+))?"
)
_ENGLISH_AMOUNT = re.compile(
    r"(?P<sign>[-+]?)"
    r"(?P<integer>[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)"
    r"(?:\.(?P<fraction>[0-9]+))?"
)
_CURRENCY_SUFFIX = re.compile(r"\s*(?:€|EUR)$", re.IGNORECASE)


def _language(locale: str) -> str:
    """Return "fr" or "en" for a locale such as "fr", "fr_FR" or "en-GB".

    Raises ValueError for any other language.
    """
    language = re.split(r"[_-]", locale, maxsplit=1)[0].lower()
    if language not in ("fr", "en"):
        raise ValueError(f"unsupported locale {locale!r}: expected a French or English locale")
    return language


def parse_decimal(text: str, locale: str = "fr") -> Decimal:
    """Parse an amount typed by a user, such as ``12 345,50 €``.

    Rule for French (``locale="fr"``): the decimal separator is a comma and
    the optional group separator is a space, a no-break space (U+00A0) or a
    narrow no-break space (U+202F), with groups of exactly three digits.
    A dot is never accepted, because ``12.500`` could mean 12500 or 12.5,
    so ``1.234,5`` and ``12,345.50`` are rejected.

    Rule for English (``locale="en"``): the decimal separator is a dot and
    the optional group separator is a comma with groups of three digits.
    ``12,345.50`` and ``12345.50`` are accepted, a comma followed by other
    than three digits (``12345,5``) is rejected, and spaces are rejected.

    In both locales a leading ``-`` or ``+`` sign (U+2212 MINUS SIGN too) and
    a trailing ``€`` or ``EUR`` are allowed, and surrounding white space is
    ignored. Any other input raises ``ParseError(code="invalid_decimal")``.
    """
    language = _language(locale)
    cleaned = _CURRENCY_SUFFIX.sub("", text.strip()).strip().replace("\u2212", "-")

    pattern = _FRENCH_AMOUNT if language == "fr" else _ENGLISH_AMOUNT
    match = pattern.fullmatch(cleaned)
    if match is None:
        raise ParseError(
            "invalid_decimal",
            text,
            f"invalid amount {text!r}: expected a number such as "
            + ("'12 345,50'" if language == "fr" else "'12,345.50'"),
        )

    integer = re.sub(r"[ \u00a0\u202f,]", "", match["integer"])
    literal = f"{match['sign']}{integer}"
    if match["fraction"] is not None:
        literal += f".{match['fraction']}"
    try:
        return Decimal(literal)
    except InvalidOperation as error:  # Unreachable for text the pattern matched.
        raise ParseError("invalid_decimal", text, f"invalid amount {text!r}") from error


def format_decimal(value: Decimal, locale: str = "fr") -> str:
    """Format an amount with two decimals and the locale's group separator.

    ``parse_decimal(format_decimal(x, loc), loc) == x`` holds for any ``x``
    with at most two decimals, because the value is rounded to two decimals
    (half-even, Babel's default) before it is formatted.
    """
    _language(locale)
    return babel_format_decimal(value, format="#,##0.00", locale=locale)


# --- Dates ---------------------------------------------------------------

_DAY_FIRST_DATE = re.compile(r"(?P<day>[0-9]{1,2})(?P<sep>[/.-])(?P<month>[0-9]{1,2})(?P=sep)(?P<year>[0-9]{4})")
_ISO_DATE = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})")


# Primary keys are 32-bit integers on PostgreSQL, so a larger id names no row.
MAX_ROW_ID = 2**31 - 1
_ROW_ID = re.compile(r"[0-9]{1,10}")


def parse_row_id(text: str | None) -> int | None:
    """Return the row id that a form or query field names, or None when it is empty, no number or out of range."""
    text = (text or "").strip()
    if _ROW_ID.fullmatch(text) is None:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ROW_ID else None


def parse_date(text: str) -> date:
    """Parse a date typed as ``dd/mm/yyyy`` or as ISO ``yyyy-mm-dd``.

    The day-first form accepts one- or two-digit day and month and ``/``,
    ``.`` or ``-`` as separator (the same one twice). It is always read day
    first, never month first. The year must have four digits. Anything else
    raises ``ParseError(code="invalid_date")``, and a date written that way that
    does not exist, such as 31/02/2026, ``ParseError(code="nonexistent_date")``.
    """
    cleaned = text.strip()
    match = _ISO_DATE.fullmatch(cleaned) or _DAY_FIRST_DATE.fullmatch(cleaned)
    if match is None:
        raise ParseError(
            "invalid_date",
            text,
            f"invalid date {text!r}: expected dd/mm/yyyy, for example 31/12/2026",
        )
    try:
        return date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError as error:
        raise ParseError("nonexistent_date", text, f"invalid date {text!r}: {error}") from error


def format_date_fr(value: date) -> str:
    """Format a date as ``dd/mm/yyyy``."""
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


# --- Text keys -----------------------------------------------------------

# Letters that have no Unicode decomposition, so NFD cannot strip them.
_LETTER_FOLDS = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "ł": "l", "đ": "d"})
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_NON_WORD = re.compile(r"[\W_]+")


def normalise_text(text: str) -> str:
    """Normalise text for search and comparison keys.

    Applies NFKC, maps typographic apostrophes (U+2019, U+2018, U+02BC) to
    ``'``, lower-cases, folds œ, æ, ß, ø, ł and đ to ASCII letters, removes
    accents (NFD, then drops combining marks) and collapses white space.
    """
    result = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    result = result.translate(_LETTER_FOLDS)
    decomposed = unicodedata.normalize("NFD", result)
    result = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(result.split())


def fold_for_match(text: str) -> str:
    """Normalise text like :func:`normalise_text`, then turn hyphens,
    apostrophes, underscores and other punctuation into single spaces."""
    folded = _NON_WORD.sub(" ", normalise_text(text))
    return " ".join(folded.split())

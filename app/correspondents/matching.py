"""Duplicate detection for correspondents (persons and organisations).

The rules, applied in this order by :func:`score_duplicate`:

1. Same normalised e-mail address: ``probable``, whatever the names.
2. Same name key (case, accents, hyphens and apostrophes ignored, so
   ``KONIG`` and ``KÖNIG`` are the same name):

   * ``probable`` when nothing contradicts, that is, no field is filled on
     both sides with different values. A shared phone number is listed as an
     extra reason. One side may lack contact data.
   * ``possible`` when the e-mail addresses, phone numbers or organisations
     differ.
   An organisation typed without a person and an entry of the same
   organisation that names a person there (or the reverse) count as the
   same name: ``Comité des fêtes`` is the entry ``M. Étienne François
   (Comité des fêtes)``.
3. Different name keys whose similarity is at least 0.85, such as
   ``Lefèvre`` and ``Lefèbvre``: ``possible``, never ``probable``, even when
   other data agree. The similarity is the ``difflib`` ratio of the keys, or
   if higher, the ratio of the shorter key (two words or more) and the
   longer key cut to as many words, so ``Hélène Lefèvre`` is similar to
   ``Hélène Lefèvre-Giraud``.
4. Different names but the same phone number: ``possible``, because a
   switchboard number can be shared by different people.
5. Otherwise ``none``.

Reasons are stable codes such as ``same_email`` that the web layer
translates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Literal

from app.core.parsing import fold_for_match

__all__ = [
    "NAME_SIMILARITY_THRESHOLD",
    "ContactFingerprint",
    "Match",
    "name_key",
    "normalise_email",
    "normalise_phone",
    "score_duplicate",
]

# difflib ratio from which two different name keys count as a possible duplicate.
NAME_SIMILARITY_THRESHOLD = 0.85

MatchLevel = Literal["probable", "possible", "none"]


# --- Normalisation -------------------------------------------------------


def normalise_email(value: str | None) -> str | None:
    """Return the e-mail address stripped and lower-cased, or None.

    Angle brackets and a ``mailto:`` prefix are removed. The whole address is
    lower-cased so that ``H.Lefevre@Example.org`` matches
    ``h.lefevre@example.org``, although RFC 5321 allows a case-sensitive
    local part. Returns None when the value has no single ``@`` between a
    non-empty local part and domain, or contains white space.
    """
    if value is None:
        return None
    address = value.strip().strip("<>").strip().lower()
    address = address.removeprefix("mailto:")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local or any(char.isspace() for char in address):
        return None
    return address


# Overseas departments dialled with a French 10-digit number but with their
# own country code. Key: the first four digits of the national number.
_OVERSEAS_PREFIXES = {
    "0590": "590",  # Guadeloupe, Saint-Martin, Saint-Barthélemy (fixed)
    "0690": "590",
    "0691": "590",
    "0594": "594",  # French Guiana
    "0694": "594",
    "0596": "596",  # Martinique
    "0696": "596",
    "0697": "596",
    "0262": "262",  # Réunion
    "0692": "262",
    "0693": "262",
    "0269": "262",  # Mayotte
    "0639": "262",
}
_PHONE_FORMATTING = re.compile(r"[\s.\-/()]")
# E.164 allows at most 15 digits. Fewer than 8 is taken as a typing error.
_MIN_INTERNATIONAL_DIGITS = 8
_MAX_INTERNATIONAL_DIGITS = 15


def _french_national_to_e164(national: str) -> str | None:
    """Convert a 10-digit French number starting with 0 to E.164."""
    if re.fullmatch(r"0[1-9][0-9]{8}", national) is None:
        return None
    overseas_code = _OVERSEAS_PREFIXES.get(national[:4])
    if overseas_code is not None:
        return f"+{overseas_code}{national[1:]}"
    return f"+33{national[1:]}"


def normalise_phone(value: str | None, default_region: str = "FR") -> str | None:
    """Convert a phone number to E.164 (``+33600000001``), or return None.

    Spaces, dots, hyphens, slashes and parentheses are ignored, and a
    ``(0)`` after the country code is dropped. ``+`` or ``00`` starts an
    international number, kept as ``+`` and its digits (8 to 15 digits, no
    leading 0).
    A French ``+33`` number must have 9 digits after the code. A number
    without prefix is read as a French national number (10 digits starting
    with 0). Numbers of the overseas departments get their own country code
    (0590… becomes +590590…). Anything else, including letters, returns None.

    Only ``default_region="FR"`` is supported, other values raise ValueError.
    """
    if default_region != "FR":
        raise ValueError(f"unsupported default region {default_region!r}: only 'FR' is supported")
    if value is None:
        return None

    compact = _PHONE_FORMATTING.sub("", value.replace("(0)", ""))
    if compact.startswith("00"):
        compact = "+" + compact[2:]

    if not compact.startswith("+"):
        return _french_national_to_e164(compact)

    digits = compact[1:]
    if re.fullmatch(r"[1-9][0-9]*", digits) is None:
        return None
    if digits.startswith("33"):
        return _french_international(digits[2:])
    if not _MIN_INTERNATIONAL_DIGITS <= len(digits) <= _MAX_INTERNATIONAL_DIGITS:
        return None
    return "+" + digits


def _french_international(subscriber: str) -> str | None:
    """Validate the digits after +33, tolerating a national 0 written by mistake."""
    if len(subscriber) == 10 and subscriber.startswith("0"):
        subscriber = subscriber[1:]
    if re.fullmatch(r"[1-9][0-9]{8}", subscriber) is None:
        return None
    return "+33" + subscriber


def name_key(name: str) -> str:
    """Build the comparison key of a name: folded, with words in their original order.

    Case, accents, hyphens, apostrophes and punctuation are ignored, so
    ``Hélène Lefèvre-Giraud`` and ``HELENE LEFEVRE GIRAUD`` share a key.
    """
    return fold_for_match(name)


# --- Scoring -------------------------------------------------------------


@dataclass(frozen=True)
class ContactFingerprint:
    """The fields of a correspondent compared for duplicate detection."""

    name: str
    organisation: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Match:
    """The outcome of a duplicate comparison and the reason codes behind it."""

    level: MatchLevel
    reasons: list[str] = field(default_factory=list)


def _compare(left: str | None, right: str | None) -> Literal["same", "different", "unknown"]:
    """Compare two normalised optional values. Missing on either side is unknown."""
    if left is None or right is None:
        return "unknown"
    return "same" if left == right else "different"


def _organisation_key(organisation: str | None) -> str | None:
    if organisation is None:
        return None
    return fold_for_match(organisation) or None


def _organisation_only(contact: ContactFingerprint) -> bool:
    """Tell whether ``contact`` is an organisation without a person's name."""
    return bool(contact.organisation) and name_key(contact.name) == name_key(contact.organisation or "")


def _name_similarity(key_a: str, key_b: str) -> float:
    """Compute the similarity of two name keys as rule 3 of the module docstring defines it."""
    similarity = SequenceMatcher(None, key_a, key_b).ratio()
    shorter, longer = sorted((key_a.split(), key_b.split()), key=len)
    if 2 <= len(shorter) < len(longer):
        prefix = " ".join(longer[: len(shorter)])
        similarity = max(similarity, SequenceMatcher(None, " ".join(shorter), prefix).ratio())
    return similarity


def score_duplicate(a: ContactFingerprint, b: ContactFingerprint) -> Match:
    """Score whether two contacts are the same correspondent.

    The rules are listed in this module's docstring.
    """
    email = _compare(normalise_email(a.email), normalise_email(b.email))
    phone = _compare(normalise_phone(a.phone), normalise_phone(b.phone))
    organisation = _compare(_organisation_key(a.organisation), _organisation_key(b.organisation))
    key_a = name_key(a.name)
    key_b = name_key(b.name)
    if organisation == "same" and _organisation_only(a) != _organisation_only(b):
        # One side is the organisation itself, the other a person there: compare them as the organisation.
        key_a = key_b = _organisation_key(a.organisation) or ""

    if email == "same":
        return Match("probable", ["same_email"])

    if key_a and key_a == key_b:
        conflicts = [
            f"different_{label}"
            for label, outcome in (("email", email), ("phone", phone), ("organisation", organisation))
            if outcome == "different"
        ]
        if conflicts:
            return Match("possible", ["same_name", *conflicts])
        reasons = ["same_name"]
        if phone == "same":
            reasons.append("same_phone")
        return Match("probable", reasons)

    if key_a and key_b and _name_similarity(key_a, key_b) >= NAME_SIMILARITY_THRESHOLD:
        return Match("possible", ["similar_name"])

    if phone == "same":
        return Match("possible", ["same_phone"])

    return Match("none", [])

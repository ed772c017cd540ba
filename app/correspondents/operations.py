"""Find, propose and create correspondents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, or_, select

from app.core.errors import ValidationFailed
from app.core.parsing import fold_for_match
from app.correspondents.matching import (
    ContactFingerprint,
    Match,
    name_key,
    normalise_email,
    normalise_phone,
    score_duplicate,
)
from app.correspondents.models import KINDS, Correspondent
from app.extensions import db

SEARCH_LIMIT = 15


@dataclass
class CorrespondentInput:
    """A correspondent picked in the directory (``id``) or typed in a form."""

    id: int | None = None
    kind: str = "person"
    civility: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organisation: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    # Set when the user saw the proposed duplicates and still wants a new entry.
    confirm_new: bool = False

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def is_empty(self) -> bool:
        return self.id is None and not (self.full_name or self.organisation or self.email)


class DuplicateCorrespondent(ValidationFailed):
    """The typed correspondent probably exists already; ``candidates`` are the matches."""

    default_message = _l(
        "This correspondent is probably already in the directory: pick the existing entry, "
        "or confirm that it is another correspondent."
    )

    def __init__(self, candidates: list[tuple[Correspondent, Match]], other_errors: dict[str, list[str]] | None = None):
        super().__init__({**(other_errors or {}), "correspondent": [str(self.default_message)]})
        self.candidates = candidates


def probable_duplicates(data: CorrespondentInput) -> list[tuple[Correspondent, Match]]:
    """Return the entries that ``data``, typed as a new correspondent, probably duplicates; none once confirmed new."""
    if data.id is not None or data.confirm_new or data.is_empty():
        return []
    return [item for item in find_duplicates(data) if item[1].level == "probable"]


def _fingerprint(name: str, organisation: str | None, email: str | None, phone: str | None) -> ContactFingerprint:
    return ContactFingerprint(name=name, organisation=organisation, email=email, phone=phone)


def _row_fingerprint(row: Correspondent) -> ContactFingerprint:
    name = " ".join(part for part in (row.first_name, row.last_name) if part) or (row.organisation or "")
    return _fingerprint(name, row.organisation, row.email, row.phone)


def find_duplicates(data: CorrespondentInput) -> list[tuple[Correspondent, Match]]:
    """Return directory entries that may be the same person or organisation, best first."""
    name = data.full_name or (data.organisation or "")
    key = name_key(name) if name else ""
    email = normalise_email(data.email)
    phone = normalise_phone(data.phone)
    conditions = []
    if key:
        # Candidates share the last word of the folded name (the surname, usually).
        conditions.append(Correspondent.name_key.contains(key.split()[-1]))
    if data.organisation and data.organisation.split():
        # Or the last word of the organisation, for an entry that names a person there.
        conditions.append(func.lower(Correspondent.organisation).contains(data.organisation.split()[-1].lower()))
    if email:
        conditions.append(Correspondent.email_key == email)
    if phone:
        conditions.append(Correspondent.phone_key == phone)
    if not conditions:
        return []

    rows = db.session.execute(select(Correspondent).where(or_(*conditions)).limit(200)).scalars()
    wanted = _fingerprint(name, data.organisation, data.email, data.phone)
    matches = [(row, score_duplicate(wanted, _row_fingerprint(row))) for row in rows]
    ranked = [item for item in matches if item[1].level != "none"]
    ranked.sort(key=lambda item: (item[1].level != "probable", item[0].id))
    return ranked


def validate_input(data: CorrespondentInput) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if data.kind not in KINDS:
        errors["correspondent_kind"] = [str(_l("Choose person or organisation."))]
    if data.kind == "person" and not data.last_name and not data.organisation:
        errors["correspondent_last_name"] = [str(_l("Give at least a last name or an organisation."))]
    if data.kind == "organisation" and not data.organisation:
        errors["correspondent_organisation"] = [str(_l("Give the organisation's name."))]
    if data.email and normalise_email(data.email) is None:
        errors["correspondent_email"] = [str(_l("Invalid e-mail address."))]
    if data.phone and normalise_phone(data.phone) is None:
        errors["correspondent_phone"] = [str(_l("Invalid phone number."))]
    return errors


def resolve_correspondent_id(data: CorrespondentInput, actor_id: int | None, created_at: datetime | None = None) -> int:
    """Return the id of the picked entry, or insert the typed one with an SQL statement and return its id.

    A typed entry is checked for invalid values and for probable duplicates
    first. The new row is inserted with an SQL statement, without the
    session's unit of work, dated ``created_at`` (now by default). Must run
    inside the caller's write transaction.
    """
    if data.id is not None:
        return _picked(data.id).id
    values = _new_correspondent_values(data, actor_id)
    if created_at is not None:
        values["created_at"] = created_at
    return int(db.session.execute(_INSERT_CORRESPONDENT, values).inserted_primary_key[0])


# Built once: registration runs it for every correspondent typed on the form.
_INSERT_CORRESPONDENT = insert(Correspondent.__table__)


def _picked(correspondent_id: int) -> Correspondent:
    row = db.session.get(Correspondent, correspondent_id)
    if row is None:
        raise ValidationFailed({"correspondent": [str(_l("The chosen correspondent no longer exists."))]})
    return row


def _new_correspondent_values(data: CorrespondentInput, actor_id: int | None) -> dict[str, object]:
    """Check a typed correspondent and return its column values.

    Raises ValidationFailed for invalid input and DuplicateCorrespondent for a probable duplicate not confirmed as new.
    """
    errors = validate_input(data)
    if errors:
        raise ValidationFailed(errors)
    probable = probable_duplicates(data)
    if probable:
        raise DuplicateCorrespondent(probable)
    return correspondent_values(data, actor_id)


def correspondent_values(data: CorrespondentInput, actor_id: int | None) -> dict[str, object]:
    """Return the column values of a typed correspondent, with its match keys, without checking it."""
    name = data.full_name or (data.organisation or "")
    return {
        "kind": data.kind,
        "civility": data.civility or None,
        "first_name": data.first_name or None,
        "last_name": data.last_name or None,
        "organisation": data.organisation or None,
        "email": (data.email or "").strip() or None,
        "phone": (data.phone or "").strip() or None,
        "address": data.address or None,
        "postcode": data.postcode or None,
        "city": data.city or None,
        "name_key": " ".join(filter(None, [name_key(name), fold_for_match(data.organisation or "")])),
        "email_key": normalise_email(data.email),
        "phone_key": normalise_phone(data.phone),
        "created_by_id": actor_id,
    }


def search_correspondents(text: str, limit: int = SEARCH_LIMIT) -> list[Correspondent]:
    """Return entries whose folded name, organisation, e-mail or phone matches every typed word."""
    words = fold_for_match(text).split()
    if not words:
        return []
    statement = select(Correspondent)
    phone = normalise_phone(text)
    for word in words[:6]:
        statement = statement.where(
            or_(Correspondent.name_key.contains(word), Correspondent.email_key.contains(word))
        )
    if phone:
        statement = select(Correspondent).where(Correspondent.phone_key == phone)
    rows = db.session.execute(statement.order_by(Correspondent.last_name, Correspondent.id).limit(limit))
    return list(rows.scalars())

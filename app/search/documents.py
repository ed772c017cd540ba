"""What the index holds for one mail, built from the database for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select

from app.configuration.operations import current_configuration
from app.distribution.models import DistributionEntry
from app.extensions import db
from app.mail.fields import display_value
from app.mail.models import HistoryEntry, Mail
from app.mail.visibility import visibility_facts
from app.search.analysis import analysed_text, chrono_keys, chrono_runs


@dataclass
class MailDocument:
    """The searchable text and the filter facts of one mail."""

    mail_id: int
    chrono: str
    subject: str
    category: str
    mail_type: str
    status: str
    priority: str
    arrival_date: date
    due_date: date | None
    letter_date: date | None
    closed: bool
    mail_version: int
    correspondents: list[str] = field(default_factory=list)
    # Custom fields as (field id, displayed value) pairs: one mapping field for all types.
    custom_fields: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    attachment_names: list[str] = field(default_factory=list)
    attachment_text: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def chrono_key(self) -> str:
        return chrono_keys(self.chrono)[0]

    @property
    def chrono_tail(self) -> str:
        return chrono_keys(self.chrono)[1]

    def display_text(self) -> str:
        """Return the mail's own text, in the order snippets prefer it."""
        parts = [self.subject, *self.correspondents, *(value for _, value in self.custom_fields), *self.notes,
                 *self.attachment_names]
        return "\n".join(part for part in parts if part)

    def terms(self) -> str:
        """Return the analysed terms of every searchable text, registration number included."""
        chrono = " ".join(chrono_runs(self.chrono))
        return " ".join(part for part in (chrono, analysed_text(self.display_text()), analysed_text(self.attachment_text)) if part)

    def engine_source(self) -> dict[str, Any]:
        """Return the document sent to Elasticsearch or OpenSearch (see mapping.py)."""
        return {
            "mail_id": self.mail_id,
            "chrono": self.chrono,
            "chrono_key": self.chrono_key,
            "chrono_tail": self.chrono_tail,
            "subject": self.subject,
            "correspondents": self.correspondents,
            "custom_fields": [{"key": key, "value": value} for key, value in self.custom_fields],
            "notes": self.notes,
            "attachment_names": self.attachment_names,
            "attachment_text": self.attachment_text,
            "category": self.category,
            "mail_type": self.mail_type,
            "status": self.status,
            "priority": self.priority,
            "arrival_date": self.arrival_date.isoformat(),
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "letter_date": self.letter_date.isoformat() if self.letter_date else None,
            "closed": self.closed,
            "mail_version": self.mail_version,
            **self.facts,
        }


def build_document(mail: Mail, attachment_text: str = "") -> MailDocument:
    """Read everything searchable about ``mail``; the caller supplies its attachments' extracted text."""
    return build_documents([mail], {mail.id: attachment_text})[0]


def build_documents(mails: list[Mail], attachment_texts: dict[int, str]) -> list[MailDocument]:
    """Build the documents of ``mails`` with one query per related table, not one per mail."""
    ids = [mail.id for mail in mails]
    entries: dict[int, list[DistributionEntry]] = {mail_id: [] for mail_id in ids}
    for entry in db.session.execute(select(DistributionEntry).where(DistributionEntry.mail_id.in_(ids))).scalars():
        entries[entry.mail_id].append(entry)
    comments: dict[int, list[str]] = {mail_id: [] for mail_id in ids}
    for mail_id, details in db.session.execute(select(HistoryEntry.mail_id, HistoryEntry.details).where(HistoryEntry.mail_id.in_(ids))):
        if isinstance(details, dict) and details.get("comment"):
            comments[mail_id].append(str(details["comment"]))
    configuration = current_configuration()
    return [
        _document(mail, attachment_texts.get(mail.id, ""), entries[mail.id], comments[mail.id], configuration)
        for mail in mails
    ]


def _document(mail: Mail, attachment_text: str, entries: list[DistributionEntry], comments: list[str],
              configuration: Any) -> MailDocument:
    spec = configuration.mail_types.get(mail.mail_type)
    custom_fields = []
    for key, stored in sorted((mail.fields or {}).items()):
        field_spec = spec.field(key) if spec else None
        value = display_value(field_spec, stored, "fr")
        if value:
            custom_fields.append((key, value))

    # Notes: the comments written on the mail's actions and the opinions given on it.
    notes = comments + [entry.answer for entry in entries if entry.answer]
    return MailDocument(
        mail_id=mail.id,
        chrono=mail.chrono,
        subject=mail.subject,
        category=mail.category,
        mail_type=mail.mail_type,
        status=mail.status,
        priority=mail.priority,
        arrival_date=mail.arrival_date,
        due_date=mail.due_date,
        letter_date=mail.letter_date,
        closed=mail.closed_at is not None,
        mail_version=mail.row_version,
        correspondents=[_correspondent_text(link.correspondent) for link in mail.correspondents],
        custom_fields=custom_fields,
        notes=notes,
        attachment_names=[attachment.display_name for attachment in mail.attachments],
        attachment_text=attachment_text,
        facts=visibility_facts(mail, entries),
    )


def _correspondent_text(correspondent: Any) -> str:
    parts = [correspondent.display_name, correspondent.email, correspondent.city]
    return " ".join(part for part in parts if part)

"""The registry of merge fields that document templates may use.

Each field has a name (the placeholder ``{{ name }}`` in a .docx template), a
description in French and English for the template screen, and a function
that computes its text from a ``MergeContext``. Texts written into a document
follow the document's language, not the language of the user's screen.
Templates may use no other name: uploads and schema files naming an unknown
field are rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
LANGUAGES = ("fr", "en")


def long_date(value: date | None, language: str) -> str:
    """Write a date in words: "4 décembre 2026", "1er mai 2026" in French, "4 December 2026" in English."""
    if value is None:
        return ""
    months = MONTHS["en" if language == "en" else "fr"]
    day = "1er" if value.day == 1 and language != "en" else str(value.day)
    return f"{day} {months[value.month - 1]} {value.year}"


@dataclass(frozen=True)
class Person:
    """A correspondent as a document names them; every attribute may be empty."""

    civility: str = ""
    name: str = ""
    organisation: str = ""
    address: str = ""
    email: str = ""


@dataclass(frozen=True)
class Contact:
    """The handling department as documents name it."""

    label: str = ""
    address: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class MergeContext:
    """Everything the merge fields read, gathered once per document by ``app.documents.context``."""

    language: str
    registration_number: str
    subject: str
    mail_type_label: str
    arrival_date: date
    letter_date: date | None
    registration_date: date
    due_date: date | None
    today: date
    sender: Person
    addressee: Person
    department: Contact
    agent_name: str
    agent_title: str
    # "acceptance", "rejection" or "none".
    regime: str
    implicit_decision_date: date | None
    legal_delay_months: int | None = None
    legal_delay_days: int | None = None
    missing_documents: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MergeField:
    name: str
    description_fr: str
    description_en: str
    compute: Callable[[MergeContext], str]

    def description(self, locale: str) -> str:
        return self.description_en if locale.startswith("en") else self.description_fr


REGIME_TEXT = {
    "fr": {
        "acceptance": "silence vaut acceptation",
        "rejection": "silence vaut rejet",
        "none": "",
    },
    "en": {
        "acceptance": "silence means acceptance",
        "rejection": "silence means rejection",
        "none": "",
    },
}

# Appeal routes against an implicit rejection (CRPA articles L411-2 and R421-2 of the code of
# administrative justice: two months for an administrative or a court appeal).
APPEAL_ROUTES = {
    "fr": (
        "Vous pouvez contester la décision implicite de rejet dans un délai de deux mois à compter de sa "
        "naissance, par un recours gracieux auprès du préfet ou un recours hiérarchique auprès du ministre "
        "compétent, ou par un recours contentieux devant le tribunal administratif compétent, y compris par "
        "l'application Télérecours citoyens (www.telerecours.fr)."
    ),
    "en": (
        "You may challenge the implicit rejection within two months of the date it arises, by an appeal to "
        "the prefect or to the competent minister, or by an action before the competent administrative court, "
        "including through the Télérecours citoyens application (www.telerecours.fr)."
    ),
}


def _delay_text(context: MergeContext) -> str:
    if context.regime == "none":
        return ""
    if context.legal_delay_days:
        unit = "days" if context.language == "en" else "jours"
        return f"{context.legal_delay_days} {unit}"
    months = context.legal_delay_months or 2
    return f"{months} {'months' if context.language == 'en' else 'mois'}"


def _appeal_routes(context: MergeContext) -> str:
    """Return the appeal routes, written only when silence means rejection."""
    if context.regime != "rejection":
        return ""
    return APPEAL_ROUTES["en" if context.language == "en" else "fr"]


def _missing(context: MergeContext) -> str:
    return "\n".join(f"- {item}" for item in context.missing_documents)


# How a letter addresses its recipient, by civility (abbreviated or written out, without its dot),
# in each language of the documents. The key "" is for a recipient without a known civility.
SALUTATIONS = {
    "fr": {"mme": "Madame", "madame": "Madame", "mlle": "Madame", "m": "Monsieur", "monsieur": "Monsieur",
           "me": "Maître", "maître": "Maître", "dr": "Docteur", "docteur": "Docteur", "": "Madame, Monsieur"},
    "en": {"mme": "Madam", "madame": "Madam", "mlle": "Madam", "m": "Sir", "monsieur": "Sir",
           "me": "Maître", "maître": "Maître", "dr": "Doctor", "docteur": "Doctor", "": "Madam, Sir"},
}


def salutation(civility: str, language: str) -> str:
    """Return the form of address of a recipient of this civility: "Madame" for "Mme", "Madame, Monsieur" without one."""
    forms = SALUTATIONS["en" if language == "en" else "fr"]
    return forms.get((civility or "").strip().rstrip(".").lower(), forms[""])


def _decision_passed(context: MergeContext) -> str:
    """Return "oui" or "yes" when the implicit decision arose before the document's date, for the past tense of a late AR."""
    if context.implicit_decision_date is None or context.implicit_decision_date >= context.today:
        return ""
    return "yes" if context.language == "en" else "oui"


def _fields() -> list[MergeField]:
    def lang_date(getter: Callable[[MergeContext], date | None]) -> Callable[[MergeContext], str]:
        return lambda context: long_date(getter(context), context.language)

    return [
        MergeField("registration_number", "Numéro chrono du courrier, p. ex. PREF75/2026/A/000123",
                   "Registration number of the mail, e.g. PREF75/2026/A/000123",
                   lambda c: c.registration_number),
        MergeField("mail_subject", "Objet du courrier", "Subject of the mail", lambda c: c.subject),
        MergeField("mail_type", "Type de courrier, dans la langue du document",
                   "Mail type, in the document's language", lambda c: c.mail_type_label),
        MergeField("arrival_date", "Date d'arrivée (date de réception de la demande), en toutes lettres",
                   "Arrival date (date the request was received), in words", lang_date(lambda c: c.arrival_date)),
        MergeField("letter_date", "Date écrite sur le courrier, en toutes lettres (vide si inconnue)",
                   "Date written on the letter, in words (empty when unknown)", lang_date(lambda c: c.letter_date)),
        MergeField("registration_date", "Date d'enregistrement du courrier, en toutes lettres",
                   "Date the mail was registered, in words", lang_date(lambda c: c.registration_date)),
        MergeField("today", "Date du jour de la génération, en toutes lettres",
                   "Date the document is generated, in words", lang_date(lambda c: c.today)),
        MergeField("due_date", "Date limite de traitement, en toutes lettres",
                   "Processing due date, in words", lang_date(lambda c: c.due_date)),
        MergeField("sender_civility", "Civilité de l'expéditeur du courrier", "Civility of the mail's sender",
                   lambda c: c.sender.civility),
        MergeField("sender_name", "Prénom et nom de l'expéditeur", "First and last name of the sender",
                   lambda c: c.sender.name),
        MergeField("sender_organisation", "Organisme de l'expéditeur", "Organisation of the sender",
                   lambda c: c.sender.organisation),
        MergeField("sender_address", "Adresse postale de l'expéditeur, sur plusieurs lignes",
                   "Postal address of the sender, on several lines", lambda c: c.sender.address),
        MergeField("sender_email", "Adresse électronique de l'expéditeur", "E-mail address of the sender",
                   lambda c: c.sender.email),
        MergeField("recipient_civility", "Civilité du destinataire du document (l'expéditeur pour un accusé de réception)",
                   "Civility of the document's recipient (the sender for an acknowledgement)",
                   lambda c: c.addressee.civility),
        MergeField("recipient_salutation",
                   "Appel du destinataire dans une lettre : Madame, Monsieur, Maître… ; « Madame, Monsieur » sans civilité",
                   "Form of address of the recipient in a letter: Madam, Sir…; \"Madam, Sir\" without a civility",
                   lambda c: salutation(c.addressee.civility, c.language)),
        MergeField("recipient_name", "Prénom et nom du destinataire du document",
                   "First and last name of the document's recipient", lambda c: c.addressee.name),
        MergeField("recipient_organisation", "Organisme du destinataire du document",
                   "Organisation of the document's recipient", lambda c: c.addressee.organisation),
        MergeField("recipient_address", "Adresse postale du destinataire du document, sur plusieurs lignes",
                   "Postal address of the document's recipient, on several lines", lambda c: c.addressee.address),
        MergeField("recipient_email", "Adresse électronique du destinataire du document",
                   "E-mail address of the document's recipient", lambda c: c.addressee.email),
        MergeField("department_label", "Service en charge du courrier", "Department in charge of the mail",
                   lambda c: c.department.label),
        MergeField("department_address", "Adresse postale du service en charge (celle du service parent si le service n'en a pas)",
                   "Postal address of the department in charge (its parent's when it has none)",
                   lambda c: c.department.address),
        MergeField("department_phone", "Téléphone du service en charge", "Phone number of the department in charge",
                   lambda c: c.department.phone),
        MergeField("department_email", "Adresse électronique du service en charge",
                   "E-mail address of the department in charge", lambda c: c.department.email),
        MergeField("agent_name", "Prénom et nom de l'agent qui produit le document",
                   "First and last name of the agent producing the document", lambda c: c.agent_name),
        MergeField("agent_title", "Fonction de l'agent (chef de service ou service d'affectation)",
                   "Position of the agent (head of department or their department)", lambda c: c.agent_title),
        MergeField("implicit_decision_date", "Date de naissance de la décision implicite, en toutes lettres",
                   "Date the implicit decision arises, in words", lang_date(lambda c: c.implicit_decision_date)),
        MergeField("implicit_decision_passed",
                   "« oui » quand la décision implicite est déjà née à la date du document, vide sinon",
                   "\"yes\" when the implicit decision has already arisen on the document's date, empty otherwise",
                   _decision_passed),
        MergeField("implicit_decision_regime", "Effet du silence : « silence vaut acceptation » ou « silence vaut rejet »",
                   "Effect of silence: \"silence means acceptance\" or \"silence means rejection\"",
                   lambda c: REGIME_TEXT["en" if c.language == "en" else "fr"].get(c.regime, "")),
        MergeField("implicit_decision_delay", "Délai au terme duquel naît la décision implicite, p. ex. « 2 mois »",
                   "Delay after which the implicit decision arises, e.g. \"2 months\"", _delay_text),
        MergeField("missing_documents", "Pièces manquantes demandées, une par ligne (vide si le dossier est complet)",
                   "Missing documents requested, one per line (empty when the file is complete)", _missing),
        MergeField("appeal_routes", "Voies et délais de recours contre un rejet implicite (vide si le silence vaut acceptation)",
                   "Appeal routes against an implicit rejection (empty when silence means acceptance)",
                   _appeal_routes),
    ]


MERGE_FIELDS: dict[str, MergeField] = {item.name: item for item in _fields()}

# Fields an acknowledgement template must contain: the mentions of CRPA article R112-5.
ACKNOWLEDGEMENT_REQUIRED_FIELDS = (
    "arrival_date", "department_label", "department_address", "department_phone", "department_email",
    "implicit_decision_date", "implicit_decision_regime", "appeal_routes", "missing_documents",
)


def merge_values(context: MergeContext) -> dict[str, str]:
    """Compute the text of every merge field for one document."""
    return {name: clean_text(item.compute(context)) for name, item in MERGE_FIELDS.items()}


def clean_text(value: Any) -> str:
    """Return ``value`` as text that fits in a .docx: Windows line ends become ``\\n``, other control characters go.

    XML 1.0 forbids most C0 control characters, and docxtpl turns ``\\a`` and
    ``\\f`` into paragraph and page breaks, so only ``\\n`` (a line break in
    the document) and ``\\t`` (a tab) are kept.
    """
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(char for char in text if char in "\n\t" or ord(char) >= 32 and not 0xFFFE <= ord(char) <= 0xFFFF)

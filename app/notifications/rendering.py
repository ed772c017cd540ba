"""Texts of notifications in French and English, for the portal and for e-mail.

The words live in ``templates/notifications/email/messages.<language>.txt``,
one file per language, as Jinja macros. Python calls the macros, so their
output is plain text, and the HTML layout escapes it like any other value:
a mail subject containing HTML is shown as text everywhere.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.documents.fields import long_date
from app.notifications.models import LANGUAGES

EMAIL_TEMPLATE_DIR = Path(__file__).parent / "templates" / "notifications" / "email"
# E-mail subjects are cut to this many characters, after joining their lines.
MAX_SUBJECT_LENGTH = 200


@dataclass(frozen=True)
class NotificationFacts:
    """What a notification text may mention, already in the recipient's language."""

    event: str
    chrono: str = ""
    mail_subject: str = ""
    mail_type: str = ""
    due_date: date | None = None
    actor_name: str = ""
    link: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    # The recipient may no longer see the mail: the texts then name neither its number nor its subject.
    hidden: bool = False


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _long_date(value: date | str | None, language: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    # As in generated documents: Babel's "en" writes the American "January 19, 2027".
    return long_date(value, language)


@functools.cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(str(EMAIL_TEMPLATE_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    environment.globals["long_date"] = _long_date
    return environment


def _messages(language: str) -> Any:
    if language not in LANGUAGES:
        language = LANGUAGES[0]
    return _environment().get_template(f"messages.{language}.txt").module


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def sentence(language: str, facts: NotificationFacts) -> str:
    """Return the one-line description of a notification, as shown in the portal list."""
    return _one_line(_messages(language).sentence(facts, language))


def render_single(language: str, facts: NotificationFacts, recipient_name: str) -> RenderedEmail:
    """Render the e-mail of one notification."""
    messages = _messages(language)
    texts = {
        "greeting": _one_line(messages.greeting(recipient_name)),
        "sentence": sentence(language, facts),
        "open_link": _one_line(messages.open_link()),
        "footer": _one_line(messages.footer()),
    }
    subject = _one_line(messages.subject(facts, language))[:MAX_SUBJECT_LENGTH]
    context = {"texts": texts, "link": facts.link, "language": language}
    return RenderedEmail(
        subject=subject,
        text=_environment().get_template("single.txt").render(context),
        html=_environment().get_template("single.html").render(context),
    )


def render_digest(
    language: str, items: list[NotificationFacts], recipient_name: str, day: date
) -> RenderedEmail:
    """Render the daily digest listing ``items``."""
    messages = _messages(language)
    texts = {
        "greeting": _one_line(messages.greeting(recipient_name)),
        "intro": _one_line(messages.digest_intro(len(items), day, language)),
        "footer": _one_line(messages.footer()),
    }
    lines = [{"sentence": sentence(language, facts), "link": facts.link} for facts in items]
    subject = _one_line(messages.digest_subject(len(items), day, language))[:MAX_SUBJECT_LENGTH]
    context = {"texts": texts, "lines": lines, "language": language}
    return RenderedEmail(
        subject=subject,
        text=_environment().get_template("digest.txt").render(context),
        html=_environment().get_template("digest.html").render(context),
    )

"""Searching, and the saved searches of each user (the only writer of ``saved_search``)."""

from __future__ import annotations

import logging
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select

from app.core.db import run_in_write_transaction
from app.core.errors import EstafetteError, NotFound, ValidationFailed
from app.extensions import db
from app.organisation.context import UserContext
from app.search.backends import BackendUnavailable, SearchBackend, configured_backend
from app.search.criteria import SearchRequest, SearchResult
from app.search.models import SavedSearch

log = logging.getLogger(__name__)

MAX_SAVED_SEARCHES = 50
MAX_NAME_LENGTH = 120


class SearchUnavailable(EstafetteError):
    http_status = 503
    default_message = _l("Search is unavailable for the moment: try again in a few minutes.")


def search(user: UserContext, request: SearchRequest, backend: SearchBackend | None = None,
           today: date | None = None) -> SearchResult:
    """Return the page of mail matching ``request`` among what ``user`` may see, with totals and facets."""
    backend = backend or configured_backend()
    try:
        if today is not None:
            return backend.search(user, request, today=today)  # type: ignore[call-arg]
        return backend.search(user, request)
    except BackendUnavailable as error:
        log.error("search by %s failed on backend %s: %s", user.display_name, backend.name, error)
        raise SearchUnavailable() from error


def attachments_awaiting_ocr(user: UserContext) -> int:
    """Count the scanned attachments of mail ``user`` may see whose text is not recognised yet.

    Their mails are found by their metadata at once, and by the words of those
    files only after the OCR job has read them.
    """
    from app.attachments.models import Attachment
    from app.mail.models import Mail
    from app.mail.visibility import visible_mail_clause
    from app.search.models import OutboxEvent

    # One OCR event reads the content of every attachment with the same checksum.
    waiting = (
        select(Attachment.sha256)
        .join(OutboxEvent, OutboxEvent.entity_id == Attachment.id)
        .where(OutboxEvent.entity == "attachment", OutboxEvent.operation == "ocr", OutboxEvent.processed_at.is_(None))
    )
    return int(db.session.execute(
        select(func.count(Attachment.id))
        .join(Mail, Mail.id == Attachment.mail_id)
        .where(Attachment.sha256.in_(waiting), visible_mail_clause(user))
    ).scalar_one())


def saved_searches(user: UserContext) -> list[SavedSearch]:
    return list(
        db.session.execute(select(SavedSearch).where(SavedSearch.user_id == user.user_id).order_by(SavedSearch.name)).scalars()
    )


def save_search(user: UserContext, name: str, query_string: str) -> SavedSearch:
    """Save (or replace, under the same name) a search of ``user``."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed({"name": [str(_l("Give the search a name."))]})
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed({"name": [str(_l("At most %(limit)s characters.", limit=MAX_NAME_LENGTH))]})
    query_string = (query_string or "")[:4000]

    def write() -> SavedSearch:
        existing = db.session.execute(
            select(SavedSearch).where(SavedSearch.user_id == user.user_id, SavedSearch.name == name)
        ).scalar_one_or_none()
        if existing is not None:
            existing.query_string = query_string
            return existing
        count = len(saved_searches(user))
        if count >= MAX_SAVED_SEARCHES:
            raise ValidationFailed({"name": [str(_l("You have %(count)s saved searches, the maximum: delete one first.", count=count))]})
        saved = SavedSearch(user_id=user.user_id, name=name, query_string=query_string)
        db.session.add(saved)
        return saved

    saved = run_in_write_transaction(write, "save search")
    log.info("search %r saved by %s", name, user.display_name)
    return saved


def delete_saved_search(user: UserContext, saved_id: int) -> None:
    """Delete one of ``user``'s saved searches; another user's id is NotFound."""

    def write() -> None:
        result = db.session.execute(delete(SavedSearch).where(SavedSearch.id == saved_id, SavedSearch.user_id == user.user_id))
        if result.rowcount == 0:
            raise NotFound()

    run_in_write_transaction(write, "delete saved search")

"""Search outbox rows from every write path, and the scheduler jobs that index them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.actions.operations import ActionInput, perform_action
from app.attachments.models import Attachment
from app.core.db import run_in_write_transaction
from app.correspondents.models import Correspondent
from app.distribution.operations import add_copies, mark_read
from app.extensions import db
from app.mail.models import HistoryEntry, Mail, MailCorrespondent
from app.mail.operations import register_mail
from app.scheduler.models import ScheduledJob
from app.scheduler.runner import SchedulerRunner
from app.search.backends import configured_backend
from app.search.backends.embedded import EmbeddedBackend
from app.search.criteria import SearchRequest
from app.search.indexer import drain
from app.search.models import OutboxEvent
from app.search.operations import search
from tests.conftest import user_context
from tests.integration.search_support import (  # noqa: F401
    _complaint,
    _residence,
    index_all,
    person,
    search_backend,
)


def _pending_mail_ids() -> list[int]:
    return list(db.session.execute(
        select(OutboxEvent.entity_id)
        .where(OutboxEvent.processed_at.is_(None), OutboxEvent.entity == "mail")
        .order_by(OutboxEvent.id)
    ).scalars())


def _registered_and_indexed(subject: str = "Réclamation sur le bruit du chantier") -> Mail:
    mail = register_mail(user_context("courrier"), _complaint(subject, person("Durand"), 1))
    assert not drain(EmbeddedBackend()).failed
    assert _pending_mail_ids() == []
    return mail


def _write(function, description: str = "test change"):
    return run_in_write_transaction(function, description)


def test_registration_queues_once(app_context):
    mail = register_mail(user_context("courrier"), _complaint("Réclamation sur le stationnement", person("Durand"), 1))

    assert _pending_mail_ids() == [mail.id]


def test_add_copies_outside_action_queues(search_backend):  # noqa: F811
    clerk = user_context("courrier")
    sejour = user_context("sejour")
    mail = register_mail(clerk, _residence("Signalement confidentiel d'un hébergeur", person("Martin", "Louise"), 1,
                                           confidential=True, assignee_id=sejour.user_id))
    index_all(search_backend)
    reader = user_context("legalite")
    before = search(reader, SearchRequest(text="hébergeur"), backend=search_backend)

    _write(lambda: add_copies(db.session.get(Mail, mail.id), [reader.user_id], [], None))
    queued = _pending_mail_ids()
    index_all(search_backend)
    after = search(reader, SearchRequest(text="hébergeur"), backend=search_backend)

    assert before.total == 0
    assert queued == [mail.id]
    assert [hit.mail_id for hit in after.hits] == [mail.id]


def test_comment_in_history_queues(app_context):
    mail = _registered_and_indexed()

    _write(lambda: db.session.add(HistoryEntry(mail_id=mail.id, event="note", details={"other": "value"})))
    without_comment = _pending_mail_ids()
    _write(lambda: db.session.add(HistoryEntry(mail_id=mail.id, event="note", details={"comment": "Voir le maire"})))

    assert without_comment == []
    assert _pending_mail_ids() == [mail.id]


def test_attachment_change_queues(app_context):
    mail = _registered_and_indexed()

    _write(lambda: db.session.add(Attachment(mail_id=mail.id, sha256="0" * 64, size=3, display_name="plan.pdf",
                                              content_type="application/pdf")))

    assert _pending_mail_ids() == [mail.id]


def test_correspondent_rename_queues_linked_mails(app_context):
    first = _registered_and_indexed("Réclamation sur le bruit")
    second = register_mail(user_context("courrier"), _complaint("Réclamation sur la poussière", person("Dupont"), 1))
    assert not drain(EmbeddedBackend()).failed
    correspondent_id = db.session.execute(
        select(MailCorrespondent.correspondent_id).where(MailCorrespondent.mail_id == first.id)
    ).scalar_one()

    def rename() -> None:
        db.session.get(Correspondent, correspondent_id).city = "Aubervilliers"

    _write(rename)

    assert _pending_mail_ids() == [first.id]
    assert second.id not in _pending_mail_ids()
    assert not drain(EmbeddedBackend()).failed
    found = search(user_context("admin"), SearchRequest(text="Aubervilliers"), backend=EmbeddedBackend())
    assert [hit.mail_id for hit in found.hits] == [first.id]


def test_rolled_back_change_queues_nothing(app_context):
    mail = _registered_and_indexed()

    def copy_then_fail() -> None:
        add_copies(db.session.get(Mail, mail.id), [user_context("legalite").user_id], [], None)
        db.session.flush()
        raise RuntimeError("the operation failed after its flush")

    with pytest.raises(RuntimeError):
        _write(copy_then_fail)

    assert _pending_mail_ids() == []


def test_read_mark_queues_nothing(app_context):
    mail = _registered_and_indexed()

    _write(lambda: mark_read(mail.id, user_context("admin").user_id))

    assert _pending_mail_ids() == []


def test_scheduler_pass_indexes_action(app, app_context):
    mail = _registered_and_indexed()
    admin = user_context("admin")
    backend = configured_backend()
    perform_action(admin, mail.id, "copy",
                   ActionInput(comment="Transmis au service du cadastre", copy_user_ids=[user_context("legalite").user_id]))
    before = search(admin, SearchRequest(text="cadastre"), backend=backend)

    result = SchedulerRunner(app, holder="search-test").run_pass()
    # End this session's read transaction: its snapshot predates the pass.
    db.session.commit()
    after = search(admin, SearchRequest(text="cadastre"), backend=backend)
    state = db.session.get(ScheduledJob, "index_search_outbox")

    assert before.total == 0
    assert result.ran["index_search_outbox"]["indexed"] == 1
    assert [hit.mail_id for hit in after.hits] == [mail.id]
    assert _pending_mail_ids() == []
    assert state.last_outcome == "success"


def test_scheduler_job_fails_while_backend_down(app, app_context, monkeypatch):
    mail = register_mail(user_context("courrier"), _complaint("Réclamation pendant la panne", person("Durand"), 1))
    monkeypatch.setitem(app.config, "SEARCH_BACKEND", "opensearch")
    monkeypatch.setitem(app.config, "SEARCH_URL", "http://127.0.0.1:9")
    monkeypatch.setitem(app.config, "SEARCH_TIMEOUT_SECONDS", 2)

    result = SchedulerRunner(app, holder="search-test").run_pass()
    db.session.commit()
    state = db.session.get(ScheduledJob, "index_search_outbox")

    assert "index_search_outbox" in result.failed
    assert state.last_outcome == "failure"
    assert "unavailable" in state.last_error
    assert _pending_mail_ids() == [mail.id]


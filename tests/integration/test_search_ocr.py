"""Scanned letters: searchable by metadata at once, by their text once OCR (Tesseract, French) has run."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from sqlalchemy import select

from app.attachments.operations import Upload
from app.extensions import db
from app.mail.operations import Registration, register_mail
from app.search.backends.embedded import EmbeddedBackend
from app.search.criteria import SearchRequest
from app.search.indexer import drain
from app.search.models import OutboxEvent
from app.search.operations import attachments_awaiting_ocr, search
from tests.conftest import user_context
from tests.integration.search_support import days_ago, person

pytestmark = pytest.mark.skipif(
    not (shutil.which("tesseract") and shutil.which("pdftoppm")),
    reason="tesseract and pdftoppm are missing: run scripts/ensure-system-packages.sh --documents",
)


def _scanned_letter_png(tmp_path) -> bytes:
    """Render a letter to PDF, then to a picture of it: a scan with no text layer."""
    from app.demo.letters import render_letter_pdf

    pdf = render_letter_pdf(
        {"category": "incoming", "subject": "Objet : stationnement gênant", "letter_date": days_ago(3),
         "body_paragraphs": ["Les riverains signalent un stationnement anarchique devant la médiathèque."]},
        {"kind": "person", "civility": "Mme", "first_name": "Claire", "last_name": "Fontaine", "organisation": None,
         "address": "2 place du Marché", "postcode": "75003", "city": "Paris", "email": None, "phone": None},
    )
    (tmp_path / "letter.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "200", "-png", "-singlefile", str(tmp_path / "letter.pdf"), str(tmp_path / "scan")], check=True)
    return (tmp_path / "scan.png").read_bytes()


def test_scan_searchable_after_ocr(app_context, tmp_path):
    backend = EmbeddedBackend()
    clerk = user_context("courrier")
    mail = register_mail(clerk, Registration(
        mail_type="public_complaint", subject="Signalement de riverains", arrival_date=days_ago(1),
        correspondent=person("Fontaine", "Claire"), uploads=[Upload(io.BytesIO(_scanned_letter_png(tmp_path)), "scan.png", kind="letter")],
    ))
    admin = user_context("admin")

    drain(backend, ocr=False)
    by_metadata = search(admin, SearchRequest(text="riverains signalement"), backend=backend)
    before_ocr = search(admin, SearchRequest(text="médiathèque"), backend=backend)
    queued = db.session.execute(select(OutboxEvent).where(OutboxEvent.entity == "attachment", OutboxEvent.processed_at.is_(None))).scalars().all()

    assert [hit.mail_id for hit in by_metadata.hits] == [mail.id]
    assert before_ocr.total == 0
    assert [event.operation for event in queued] == ["ocr"]

    result = drain(backend)
    after_ocr = search(admin, SearchRequest(text="mediatheque stationnement"), backend=backend)

    assert result.recognised == 1
    assert [hit.mail_id for hit in after_ocr.hits] == [mail.id]


def test_pending_ocr_counted_for_visible_mail(app_context, client_as, tmp_path):
    backend = EmbeddedBackend()
    register_mail(user_context("courrier"), Registration(
        mail_type="public_complaint", subject="Signalement de riverains", arrival_date=days_ago(1),
        correspondent=person("Fontaine", "Claire"), uploads=[Upload(io.BytesIO(_scanned_letter_png(tmp_path)), "scan.png", kind="letter")],
    ))
    drain(backend, ocr=False)

    page = client_as("courrier").get("/search/?q=m%C3%A9diath%C3%A8que").get_data(as_text=True)

    assert attachments_awaiting_ocr(user_context("courrier")) == 1
    assert attachments_awaiting_ocr(user_context("naturalisation")) == 0
    assert 'id="search-awaiting-ocr"' in page
    drain(backend)
    assert attachments_awaiting_ocr(user_context("courrier")) == 0


def test_same_scan_two_mails_both_found(app_context, tmp_path):
    backend = EmbeddedBackend()
    scan = _scanned_letter_png(tmp_path)
    mails = [
        register_mail(user_context("courrier"), Registration(
            mail_type="public_complaint", subject=f"Signalement de riverains {number}", arrival_date=days_ago(1),
            correspondent=person(last_name, "Claire"), uploads=[Upload(io.BytesIO(scan), "scan.png", kind="letter")],
        ))
        for number, last_name in ((1, "Fontaine"), (2, "Rivière"))
    ]
    drain(backend, ocr=False)
    waiting = attachments_awaiting_ocr(user_context("admin"))

    drain(backend)
    found = search(user_context("admin"), SearchRequest(text="mediatheque stationnement"), backend=backend)

    assert waiting == 2
    assert sorted(hit.mail_id for hit in found.hits) == sorted(mail.id for mail in mails)


def test_scheduler_pass_runs_ocr(app, app_context, tmp_path):
    from app.scheduler.runner import SchedulerRunner
    from app.search.backends import configured_backend

    clerk = user_context("courrier")
    mail = register_mail(clerk, Registration(
        mail_type="public_complaint", subject="Signalement de riverains", arrival_date=days_ago(1),
        correspondent=person("Fontaine", "Claire"), uploads=[Upload(io.BytesIO(_scanned_letter_png(tmp_path)), "scan.png", kind="letter")],
    ))

    result = SchedulerRunner(app, holder="ocr-test").run_pass()
    # End this session's read transaction: its snapshot predates the pass.
    db.session.commit()
    found = search(user_context("admin"), SearchRequest(text="médiathèque"), backend=configured_backend())
    pending = db.session.execute(select(OutboxEvent.id).where(OutboxEvent.processed_at.is_(None))).scalars().all()

    assert result.ran["index_search_outbox"]["indexed"] == 1
    assert result.ran["recognise_attachments"]["recognised"] == 1
    assert [hit.mail_id for hit in found.hits] == [mail.id]
    assert pending == []

"""The nightly sweeps: stored files no row refers to go and the others stay; day-old form tokens go."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import String

from app.attachments.operations import Upload, content_store
from app.attachments.tasks import BLOB_COLUMNS, CURSOR_FILE
from app.correspondents.operations import CorrespondentInput
from app.mail.operations import register_mail
from app.scheduler.runner import SchedulerRunner
from tests.conftest import user_context
from tests.integration.test_registration import _pdf, _residence_request

THREE_DAYS = 3 * 24 * 3600


def _age(path: os.PathLike[str], seconds: int) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def test_nightly_sweep_deletes_only_old_unreferenced_files(app):
    with app.app_context():
        mail = register_mail(user_context("courrier"), _residence_request(
            uploads=[Upload(io.BytesIO(_pdf()), "lettre.pdf", kind="letter")],
        ))
        letter = mail.attachments[0].sha256
        store = content_store()
        # What a registration whose transaction failed after storing its file leaves behind.
        orphan = store.put_bytes(b"%PDF-1.7 stored, then the transaction failed")
        recent = store.put_bytes(b"%PDF-1.7 stored a moment ago, its row not committed yet")
        for sha256 in (letter, orphan.sha256):
            _age(store.path_for(sha256), THREE_DAYS)

    runner = SchedulerRunner(app, holder="sweep")
    runner.run_pass(datetime(2026, 12, 4, 20, 0, tzinfo=UTC))
    # 03:30 in Paris, after the sweep's hour.
    night = runner.run_pass(datetime(2026, 12, 5, 2, 30, tzinfo=UTC))
    later = runner.run_pass(datetime(2026, 12, 5, 2, 31, tzinfo=UTC))

    assert night.ran["sweep_content_store"] == {"deleted": 1}
    assert "sweep_content_store" not in later.ran
    with app.app_context():
        assert not store.exists(orphan.sha256)
        assert store.exists(recent.sha256)
        assert store.read_verified(letter).is_file()


def test_sweep_resumes_at_next_pass(app, monkeypatch):
    monkeypatch.setitem(app.config, "STORAGE_SWEEP_SECONDS", 0)
    with app.app_context():
        store = content_store()
        orphans = [store.put_bytes(f"%PDF-1.7 orphan {number}".encode()) for number in range(6)]
        for orphan in orphans:
            _age(orphan.path, THREE_DAYS)
    runner = SchedulerRunner(app, holder="sweep-in-slices")
    runner.run_pass(datetime(2026, 12, 4, 20, 0, tzinfo=UTC))

    moment = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)
    first = runner.run_pass(moment)
    assert first.ran["sweep_content_store"]["remaining"] > 0
    assert (store.root / CURSOR_FILE).exists()
    # One shard per pass here: at most 256 passes, a minute apart.
    passes = [first]
    while "remaining" in passes[-1].ran.get("sweep_content_store", {}) and len(passes) <= 256:
        moment += timedelta(minutes=1)
        passes.append(runner.run_pass(moment))
        assert "sweep_content_store" in passes[-1].ran
    after = runner.run_pass(moment + timedelta(minutes=1))

    assert sum(item.ran["sweep_content_store"]["deleted"] for item in passes) >= len(orphans)
    assert not any(store.exists(orphan.sha256) for orphan in orphans)
    assert not (store.root / CURSOR_FILE).exists()
    assert "sweep_content_store" not in after.ran


def test_sweep_reads_every_file_column(app):
    # A file column missing from BLOB_COLUMNS would have its files deleted by the sweep.
    declared = {(column.table.name, column.name) for column in BLOB_COLUMNS}
    found = {
        (table.name, column.name)
        for table in BLOB_COLUMNS[0].table.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("sha256") and isinstance(column.type, String) and table.name != "search_extracted_text"
    }
    assert declared == found


def test_nightly_pass_forgets_day_old_form_tokens(app):
    from sqlalchemy import select

    from app.extensions import db
    from app.mail.models import RegistrationSubmission

    with app.app_context():
        clerk = user_context("courrier")
        arrived = date(2026, 12, 2)
        register_mail(clerk, _residence_request(submission_token="0a" * 16, arrival_date=arrived),
                      now=datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
        register_mail(clerk, _residence_request(submission_token="0b" * 16, subject="Autre demande", arrival_date=arrived,
                                                correspondent=CorrespondentInput(last_name="Martin", first_name="Paul")),
                      now=datetime(2026, 12, 4, 16, 0, tzinfo=UTC))

    runner = SchedulerRunner(app, holder="sweep")
    runner.run_pass(datetime(2026, 12, 4, 20, 0, tzinfo=UTC))
    night = runner.run_pass(datetime(2026, 12, 5, 2, 30, tzinfo=UTC))

    assert night.ran["forget_registration_submissions"] == {"deleted": 1}
    with app.app_context():
        assert db.session.execute(select(RegistrationSubmission.token)).scalars().all() == ["0b" * 16]

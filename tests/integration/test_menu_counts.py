"""The per-user cache of the menu's basket counts: kept between pages, forgotten at every write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from app.configuration.operations import current_configuration
from app.correspondents.operations import CorrespondentInput
from app.extensions import db
from app.mail.baskets import basket_counts
from app.mail.menu_counts import forget_all_counts
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import user_context


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_all_counts()
    yield
    forget_all_counts()


def _register() -> int:
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="public_complaint", subject="Réclamation", arrival_date=today_in_paris() - timedelta(days=1),
            handling_department="DMI-SSE-BPT",
            correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
        ),
    )
    return mail.id


def _to_process_count(username: str) -> int:
    counts = {basket.id: count for basket, count in basket_counts(user_context(username), current_configuration())}
    return counts["to_process"]


def test_registration_refreshes_counts(app_context):
    before = _to_process_count("sejour")

    _register()

    assert _to_process_count("sejour") == before + 1


def test_counts_kept_until_forgotten(app_context):
    mail_id = _register()
    assert _to_process_count("sejour") == 1

    # A write through another connection, as another process would write: no session of this
    # process records it, so nothing forgets the counts.
    with db.engine.connect() as other:
        other.execute(text("UPDATE mail SET status = 'closed' WHERE id = :id"), {"id": mail_id})
        other.commit()
    db.session.commit()

    assert _to_process_count("sejour") == 1
    forget_all_counts()
    assert _to_process_count("sejour") == 0


def test_cache_off_counts_every_time(app_context):
    mail_id = _register()
    assert _to_process_count("sejour") == 1
    previous = app_context.config.get("MENU_COUNTS_CACHE_SECONDS")
    app_context.config["MENU_COUNTS_CACHE_SECONDS"] = 0
    try:
        with db.engine.connect() as other:
            other.execute(text("UPDATE mail SET status = 'closed' WHERE id = :id"), {"id": mail_id})
            other.commit()
        db.session.commit()

        assert _to_process_count("sejour") == 0
    finally:
        if previous is None:
            app_context.config.pop("MENU_COUNTS_CACHE_SECONDS")
        else:
            app_context.config["MENU_COUNTS_CACHE_SECONDS"] = previous


def test_counts_kept_per_user(app_context):
    _register()

    assert _to_process_count("sejour") == 1
    assert _to_process_count("naturalisation") == 0

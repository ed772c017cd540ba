"""The embedded backend past its exact count: the newest matches only, the visibility rule still applied."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy import text as sql_text

from app.extensions import db
from app.search.backends import embedded
from app.search.backends.embedded import EmbeddedBackend
from app.search.criteria import SearchRequest
from app.search.operations import search
from tests.conftest import user_context
from tests.integration.search_support import index_all, register_corpus


def test_large_match_counts_newest(app_context, monkeypatch):
    mails = register_corpus()
    backend = EmbeddedBackend()
    index_all(backend)
    admin = user_context("admin")
    exact = search(admin, SearchRequest(text="", page_size=100), backend=backend)
    monkeypatch.setattr(embedded, "EXACT_LIMIT", 3)
    capped = search(admin, SearchRequest(text="", page_size=100), backend=backend)
    newest = sorted((mail.id for mail in mails.values()), reverse=True)[:3]

    assert exact.total == len(mails)
    assert exact.total_is_exact
    assert capped.total == 3
    assert not capped.total_is_exact
    assert not capped.facets_are_exact
    assert sorted((hit.mail_id for hit in capped.hits), reverse=True) == newest
    assert sum(count for _, count in capped.facets["category"]) == 3


def test_large_match_keeps_visibility(app_context, monkeypatch):
    register_corpus()
    backend = EmbeddedBackend()
    index_all(backend)
    agent = user_context("chef.sejour")
    visible = {hit.mail_id for hit in search(agent, SearchRequest(text="", page_size=100), backend=backend).hits}
    monkeypatch.setattr(embedded, "EXACT_LIMIT", len(visible) - 1)
    capped = search(agent, SearchRequest(text="", page_size=100), backend=backend)
    by_word = search(agent, SearchRequest(text="séjour", page_size=100), backend=backend)

    assert len(visible) >= 2
    assert {hit.mail_id for hit in capped.hits} <= visible
    assert len(capped.hits) == len(visible) - 1
    assert not capped.total_is_exact
    assert {hit.mail_id for hit in by_word.hits} <= visible


def test_exact_number_kept_past_limit(app_context, monkeypatch):
    mails = register_corpus()
    backend = EmbeddedBackend()
    index_all(backend)
    oldest = mails["premier_titre"]
    monkeypatch.setattr(embedded, "EXACT_LIMIT", 1)
    found = search(user_context("admin"), SearchRequest(text=oldest.chrono), backend=backend)

    assert found.hits[0].mail_id == oldest.id


def test_word_estimate_read_once(app_context):
    """PostgreSQL's estimate of a word's matches is read for the first search, then kept."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only the embedded backend on PostgreSQL reads estimates")
    register_corpus()
    backend = EmbeddedBackend()
    index_all(backend)
    embedded.forget_planner_facts()
    explained: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany):
        if statement.startswith("EXPLAIN"):
            explained.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        first = search(user_context("admin"), SearchRequest(text="séjour"), backend=backend)
        after_first = len(explained)
        second = search(user_context("admin"), SearchRequest(text="séjour"), backend=backend)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
        embedded.forget_planner_facts()

    assert after_first == 1
    assert len(explained) == 1
    assert first.total > 0
    assert [hit.mail_id for hit in second.hits] == [hit.mail_id for hit in first.hits]


@pytest.mark.parametrize("text", ["zzzinconnu", "séjour", "PREF75/2026/A/000123"])
def test_planner_settings_reset_after_search(app_context, text):
    """A search sends its PostgreSQL settings once, changes them between windows only when needed, and resets them."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only the embedded backend on PostgreSQL changes planner settings")
    register_corpus()
    backend = EmbeddedBackend()
    index_all(backend)
    names = [*embedded.PLANNER_SETTINGS, "enable_hashjoin", "enable_bitmapscan"]

    def shown() -> dict[str, str]:
        return {name: db.session.execute(sql_text(f"SHOW {name}")).scalar_one() for name in names}

    before = shown()
    sent: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        search(user_context("admin"), SearchRequest(text=text), backend=backend)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    settings = [statement for statement in sent if statement.startswith("SET LOCAL")]
    reads = [statement for statement in sent if statement.lstrip().startswith("SELECT")]

    assert shown() == before
    assert settings[0].count("SET LOCAL") >= len(embedded.PLANNER_SETTINGS)
    assert sent.index(settings[0]) < min(sent.index(statement) for statement in reads if "search_document" in statement)
    assert settings[-1].count("TO DEFAULT") == settings[-1].count("SET LOCAL")
    # One to set, one to reset, and one between the text and the registration number windows.
    assert len(settings) <= 3
    if text == "zzzinconnu":
        assert len(settings) == 2


def test_planner_settings_reset_after_python_error(app_context, monkeypatch):
    """A search that fails in Python, not in the database, still sets the planner settings back."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only the embedded backend on PostgreSQL changes planner settings")
    register_corpus()
    backend = EmbeddedBackend()
    index_all(backend)
    before = db.session.execute(sql_text("SHOW enable_mergejoin")).scalar_one()

    def fail(*_arguments):
        raise KeyError("mail deleted during the search")

    monkeypatch.setattr(EmbeddedBackend, "_hits", staticmethod(fail))
    with pytest.raises(KeyError):
        search(user_context("admin"), SearchRequest(text="séjour"), backend=backend)

    assert db.session.execute(sql_text("SHOW enable_mergejoin")).scalar_one() == before

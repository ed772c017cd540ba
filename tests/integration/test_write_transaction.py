"""write_transaction: one commit after the request's reads on PostgreSQL, and a failed write saves nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select

from app.core.db import run_in_write_transaction, write_transaction
from app.extensions import db
from app.search.models import SavedSearch
from app.search.operations import save_search
from tests.conftest import user_context


def _saved_count(user_id: int) -> int:
    return db.session.execute(select(func.count()).select_from(SavedSearch).where(SavedSearch.user_id == user_id)).scalar_one()


def _commits_during(action: Any) -> int:
    """Return how many transactions the database connection committed while ``action`` ran."""
    commits: list[int] = []

    def count(_connection: Any) -> None:
        commits.append(1)

    event.listen(db.engine, "commit", count)
    try:
        action()
    finally:
        event.remove(db.engine, "commit", count)
    return len(commits)


def test_write_after_read_commits_once(app_context):
    agent = user_context("sejour")

    def read_then_write() -> None:
        # A request reads before its operation writes: the user, the page's lists.
        _saved_count(agent.user_id)
        save_search(agent, "Titres de séjour", "q=s%C3%A9jour")

    commits = _commits_during(read_then_write)

    assert commits == (2 if db.engine.dialect.name == "sqlite" else 1)
    assert _saved_count(agent.user_id) == 1


def test_failed_write_after_read_saves_nothing(app_context):
    agent = user_context("sejour")
    _saved_count(agent.user_id)

    def write_then_fail() -> None:
        db.session.add(SavedSearch(user_id=agent.user_id, name="Brouillon", query_string="q=brouillon"))
        db.session.flush()
        raise RuntimeError("rejected after the flush")

    with pytest.raises(RuntimeError):
        run_in_write_transaction(write_then_fail, "failing write")

    assert not db.session().in_transaction()
    assert _saved_count(agent.user_id) == 0


def test_pending_changes_committed_before_write(app_context):
    agent = user_context("sejour")
    db.session.add(SavedSearch(user_id=agent.user_id, name="Avant", query_string="q=avant"))

    with pytest.raises(RuntimeError), write_transaction():
        db.session.add(SavedSearch(user_id=agent.user_id, name="Pendant", query_string="q=pendant"))
        db.session.flush()
        raise RuntimeError("rejected after the flush")

    names = db.session.execute(select(SavedSearch.name).where(SavedSearch.user_id == agent.user_id)).scalars().all()
    assert names == ["Avant"]


def test_write_after_failed_statement_succeeds(app_context):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    agent = user_context("sejour")
    _saved_count(agent.user_id)
    with pytest.raises(DBAPIError):
        db.session.execute(text("SELECT * FROM no_such_table"))

    save_search(agent, "Après une erreur", "q=erreur")

    assert _saved_count(agent.user_id) == 1


def test_write_after_failed_commit_succeeds(app_context):
    from sqlalchemy.exc import IntegrityError

    agent = user_context("sejour")
    save_search(agent, "Doublon", "q=premier")
    _saved_count(agent.user_id)

    def add_duplicate() -> None:
        # Flushed at the commit, where the unique name of a user's searches rejects it.
        db.session.add(SavedSearch(user_id=agent.user_id, name="Doublon", query_string="q=second"))

    with pytest.raises(IntegrityError):
        run_in_write_transaction(add_duplicate, "duplicate saved search")
    save_search(agent, "Après un échec", "q=apres")

    assert _saved_count(agent.user_id) == 2

"""A short per-user cache of the menu, emptied by every write committed in this process.

Every portal page shows the count of each basket the user may open, and
computing them costs about as much as the page itself. The counts are kept
for ``MENU_COUNTS_CACHE_SECONDS`` (10 by default, 0 turns the cache off) per
user, configuration version and day. The menu rendered around them (the
menu of Flask-AppBuilder with its permission checks, the baskets, the
unread notifications) is kept as long, under a key that adds what the
rendering reads of the request. Any committed transaction of this
process that inserted, updated or deleted rows empties the whole cache,
because one write may change the baskets of many users. Writes made by other
processes (other web workers, the scheduler) show in the menu once the entry
expires. The basket page itself always counts its own mail exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from app.organisation.context import UserContext

DEFAULT_TTL_SECONDS = 10.0
# Entries kept before the expired ones are dropped. The counts of a user take a few hundred
# bytes and a rendered menu about 6 KB, so the cache stays under about 30 MB per process.
MAX_ENTRIES = 5000
_WROTE_KEY = "estafette_menu_counts_wrote"
_GENERATION_KEY = "estafette_menu_generation"

_lock = threading.Lock()
_entries: dict[tuple[Any, ...], tuple[float, Any]] = {}
# Incremented each time the cache is emptied, so that a value computed across a write is not kept.
_generation = 0


def _ttl_seconds() -> float:
    if not has_app_context():
        return 0.0
    return float(current_app.config.get("MENU_COUNTS_CACHE_SECONDS", DEFAULT_TTL_SECONDS))


def _key(user: UserContext, parts: tuple[Any, ...]) -> tuple[Any, ...]:
    # Everything of the user's context that a basket's filter or the visibility rule reads.
    return (
        user.user_id, user.permissions, user.department_ids, user.scope_department_ids,
        user.primary_department_id, user.delegator_ids, *parts,
    )


def cached_counts(
    user: UserContext, configuration_version: int | None, today: date, compute: Callable[[], Any]
) -> Any:
    """Return the counts stored for ``user`` if they are younger than the TTL, else ``compute()`` and store them."""
    return cached_for_user(user, ("counts", configuration_version, today), compute)


def cached_for_user(user: UserContext, parts: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """Return the value stored for ``user`` and ``parts`` if younger than the TTL, else ``compute()`` and store it.

    ``parts`` contains what the value depends on besides the user's context: its
    kind first, then for example the configuration version and the day.
    """
    ttl = _ttl_seconds()
    if ttl <= 0:
        return compute()
    key = _key(user, parts)
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and now - entry[0] < ttl:
        return entry[1]

    generation = getattr(g, _GENERATION_KEY, None) if has_request_context() else None
    if generation is None:
        generation = _generation
    value = compute()
    with _lock:
        if _generation != generation:
            # Emptied since this request began (on SQLite it reads the snapshot of its first
            # query) or since compute() began: the value may predate a write, so it is not kept.
            return value
        if len(_entries) >= MAX_ENTRIES:
            for stale in [item for item, (stored_at, _) in _entries.items() if now - stored_at >= ttl]:
                del _entries[stale]
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
        _entries[key] = (now, value)
    return value


def forget_all_counts() -> None:
    global _generation
    with _lock:
        _entries.clear()
        _generation += 1


def note_request_start() -> None:
    """Record the cache's generation at the start of a request. Run it before the request's first query."""
    setattr(g, _GENERATION_KEY, _generation)


def _note_orm_write(session: Session, _flush_context: Any) -> None:
    session.info[_WROTE_KEY] = True


def _note_statement_write(state: ORMExecuteState) -> None:
    # Anything but a SELECT counts as a write, textual SQL included, since its kind is unknown.
    if not state.is_select:
        state.session.info[_WROTE_KEY] = True


def _forget_after_commit(session: Session) -> None:
    if session.info.pop(_WROTE_KEY, False):
        forget_all_counts()


def _reset_after_rollback(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_WROTE_KEY, None)


def install_menu_counts_invalidation() -> None:
    """Listen to the writes and commits of every ORM session. Calling it again adds nothing."""
    listeners = (
        ("after_flush", _note_orm_write),
        ("do_orm_execute", _note_statement_write),
        ("after_commit", _forget_after_commit),
        ("after_soft_rollback", _reset_after_rollback),
    )
    for name, listener in listeners:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)

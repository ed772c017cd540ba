"""Registration numbers (numéros chrono): unique and gapless per year and category."""

from __future__ import annotations

from sqlalchemy import select, text, update

from app.extensions import db
from app.mail.models import ChronoCounter

# Same SQL on PostgreSQL and SQLite (3.35 or later). Written as text because
# SQLAlchemy 2.0 does not cache the dialects' insert().on_conflict_do_update()
# statements and would compile one at every registration.
_UPSERT_COUNTER = text(
    "INSERT INTO chrono_counter (category, year, last_number) VALUES (:category, :year, 1) "
    "ON CONFLICT (category, year) DO UPDATE SET last_number = chrono_counter.last_number + 1 "
    "RETURNING last_number"
)


def next_number(category: str, year: int) -> int:
    """Reserve the next number of ``category`` for ``year`` in the current transaction.

    The counter row is created or incremented by one atomic statement, which
    locks it until the transaction ends (a row lock on PostgreSQL, the write
    lock on SQLite).  Concurrent registrations therefore wait for each other,
    and a rollback returns the number: numbers are never skipped nor reused.
    """
    dialect = db.engine.dialect.name
    if dialect in ("postgresql", "sqlite"):
        return int(db.session.execute(_UPSERT_COUNTER, {"category": category, "year": year}).scalar_one())

    # Other databases: lock the row explicitly, then increment it.
    current = db.session.execute(
        select(ChronoCounter.last_number)
        .where(ChronoCounter.category == category, ChronoCounter.year == year)
        .with_for_update()
    ).scalar_one_or_none()
    if current is None:
        db.session.add(ChronoCounter(category=category, year=year, last_number=1))
        db.session.flush()
        return 1
    db.session.execute(
        update(ChronoCounter)
        .where(ChronoCounter.category == category, ChronoCounter.year == year)
        .values(last_number=current + 1)
    )
    return current + 1


def format_chrono(pattern: str, year: int, number: int) -> str:
    return pattern.format(year=year, number=number)

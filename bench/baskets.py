"""Time every declared basket's first page and count, per user, against the same query in raw SQL.

Example:
    PYTHONPATH=. python -m bench.baskets --mails 100000
    PYTHONPATH=. python -m bench.baskets --mails 100000 --reuse-database
    PYTHONPATH=. python -m bench.baskets --mails 100000 --database postgresql

Steps: a fresh SQLite database ``var/bench/baskets-<mails>.sqlite3`` (or,
with ``--database postgresql``, the database ``estafette_bench_baskets`` of
the private cluster of ``scripts/ensure-postgres.sh``) built like the test database (``bench.database.build_schema``), the bulk load of
``bench.generate.load_mails``, then distribution lists added in bulk (copies
on about 4 % of the mail and opinion requests on about 2 %, half of them
answered) and ``closed_at`` on closed mail.  Then, for each declared basket
and each user (a plain agent, a head of department, the administrator):

- the first page as ``basket_page`` builds it (page query, count and unread
  marks) and the count alone (``count_basket``), each call in a fresh session;
- the same page query and count compiled to SQL text with literal values
  and run on the raw driver connection, each alone and both in a row (what
  ``basket_page`` sends for the page and its count).

The page with the user's own rights and the same page with ``read_all``
added are timed in turn, call by call, and their ratio is the cost of the
visibility rule alone.

It prints p50 and p95 in milliseconds, the ratio of the application call to
the raw SQL, and the ratio of the page to the same page with ``read_all`` at
p95 and at p50, and writes them as JSON.  Measured figures go to
bench/BASKETS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.database import (
    BENCH_VAR_DIR,
    REPO,
    build_schema,
    configure_bench_logging,
    create_bench_app,
    reset_postgresql,
    start_postgresql,
)

log = logging.getLogger("bench")

USERS = ("sejour", "chef.sejour", "admin")
PAGE_SIZE = 50
COPY_SHARE = 0.04
OPINION_SHARE = 0.02
POSTGRES_DATABASE = "estafette_bench_baskets"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def summarise(seconds: list[float]) -> dict[str, float]:
    milliseconds = [value * 1000 for value in seconds]
    return {"p50_ms": round(percentile(milliseconds, 0.5), 2), "p95_ms": round(percentile(milliseconds, 0.95), 2)}


def time_calls(function: Callable[[], Any], repeat: int, after: Callable[[], None]) -> list[float]:
    for _ in range(3):
        function()
        after()
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
        after()
    return durations


def time_alternately(
    first: Callable[[], Any], second: Callable[[], Any], repeat: int, after: Callable[[], None]
) -> tuple[list[float], list[float]]:
    """Time two functions call by call in turn and return the durations of each.

    A change of machine load during the measurement then weighs on both
    alike, where timing all calls of one before all calls of the other
    could charge it to one of them. The order inside a pair alternates too,
    so that neither always runs right after the other.
    """
    for _ in range(3):
        first()
        after()
        second()
        after()
    first_durations: list[float] = []
    second_durations: list[float] = []
    for index in range(repeat):
        pair = [(first, first_durations), (second, second_durations)]
        if index % 2:
            pair.reverse()
        for function, durations in pair:
            started = time.perf_counter()
            function()
            durations.append(time.perf_counter() - started)
            after()
    return first_durations, second_durations


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def add_distribution_lists(seed: int) -> dict[str, int]:
    """Add copies and opinion requests to part of the loaded mail, and closed_at to closed mail."""
    from flask_appbuilder.security.sqla.models import User

    from app.core.db import write_transaction
    from app.core.types import utcnow
    from app.distribution.models import DistributionEntry
    from app.extensions import db
    from app.mail.models import Mail
    from app.organisation.models import Department

    rng = random.Random(seed)
    users = list(db.session.execute(sa.select(User.id)).scalars())
    departments = list(db.session.execute(sa.select(Department.id)).scalars())
    mails = db.session.execute(sa.select(Mail.id, Mail.assignee_id, Mail.created_at)).all()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    counts = {"copies": 0, "opinions": 0}
    for mail_id, assignee_id, created_at in mails:
        draw = rng.random()
        if draw < COPY_SHARE:
            target = {"user_id": rng.choice(users)} if rng.random() < 0.6 else {"department_id": rng.choice(departments)}
            rows.append({"mail_id": mail_id, "role": "copy", "user_id": None, "department_id": None,
                         "requested_by_id": assignee_id, "requested_at": created_at, **target})
            counts["copies"] += 1
        elif draw < COPY_SHARE + OPINION_SHARE:
            answered = rng.random() < 0.5
            target = {"user_id": rng.choice(users)} if rng.random() < 0.5 else {"department_id": rng.choice(departments)}
            rows.append({"mail_id": mail_id, "role": "opinion", "user_id": None, "department_id": None,
                         "requested_by_id": assignee_id or rng.choice(users), "requested_at": created_at,
                         "answered_at": now if answered else None, **target})
            counts["opinions"] += 1
    for row in rows:
        row.setdefault("answered_at", None)
    with write_transaction():
        for start in range(0, len(rows), 5000):
            db.session.execute(sa.insert(DistributionEntry), rows[start:start + 5000])
        db.session.execute(
            sa.update(Mail).where(Mail.status.in_(["closed", "closed_without_follow_up"])).values(closed_at=Mail.updated_at)
        )
    return counts


def _raw_timer(connection: Any, sql: str) -> Callable[[], Any]:
    def run() -> Any:
        cursor = connection.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall()
        cursor.close()
        return rows

    return run


def _raw_pair_timer(connection: Any, first_sql: str, second_sql: str) -> Callable[[], Any]:
    first, second = _raw_timer(connection, first_sql), _raw_timer(connection, second_sql)

    def run() -> Any:
        return first(), second()

    return run


def postgresql_url() -> str:
    """Start the private PostgreSQL cluster if needed and return the URL of this benchmark's own database."""
    return start_postgresql(POSTGRES_DATABASE)


def analyse_postgresql(url: str) -> None:
    """Run VACUUM ANALYZE after the bulk load, as autovacuum would in a steady database.

    VACUUM sets the visibility map, without which PostgreSQL reads the table
    rows even when an index covers the query.
    """
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def measure(repeat: int, usernames: tuple[str, ...] = USERS, basket_ids: set[str] | None = None) -> dict[str, Any]:
    from flask_appbuilder.security.sqla.models import User

    from app.configuration.operations import current_configuration
    from app.extensions import db
    from app.mail.baskets import (
        basket_page,
        basket_page_statement,
        basket_query,
        count_basket,
        may_open_basket,
    )
    from app.organisation.context import build_user_context

    configuration = current_configuration()
    results: dict[str, Any] = {}
    for username in usernames:
        user = build_user_context(db.session.execute(sa.select(User).where(User.username == username)).scalar_one())
        results[username] = {}
        for basket in sorted(configuration.baskets.values(), key=lambda item: item.order):
            if not may_open_basket(basket, user) or (basket_ids and basket.id not in basket_ids):
                continue
            # The same basket for the same user as if they held read_all: the cost of the visibility rule alone.
            # Both pages are timed in turn, call by call, so that the load of the shared machine weighs on both.
            unrestricted = dataclasses.replace(user, permissions=user.permissions | {"read_all"})
            page, page_unrestricted = time_alternately(
                partial(basket_page, user, configuration, basket.id, 1, PAGE_SIZE),
                partial(basket_page, unrestricted, configuration, basket.id, 1, PAGE_SIZE),
                repeat, db.session.remove,
            )
            count = time_calls(partial(count_basket, user, basket), repeat, db.session.remove)

            query = basket_query(basket, user)
            dialect = db.engine.dialect
            # The count chooses the page statement's form, as in basket_page().
            page_sql = str(basket_page_statement(basket, query, 1, PAGE_SIZE, count_basket(user, basket)).compile(
                dialect=dialect, compile_kwargs={"literal_binds": True}))
            count_sql = str(query.count_statement().compile(
                dialect=dialect, compile_kwargs={"literal_binds": True}))
            raw_connection = db.engine.raw_connection()
            try:
                raw_page = time_calls(_raw_timer(raw_connection, page_sql), repeat, lambda: None)
                raw_count = time_calls(_raw_timer(raw_connection, count_sql), repeat, lambda: None)
                raw_both = time_calls(_raw_pair_timer(raw_connection, page_sql, count_sql), repeat, lambda: None)
                total = _raw_timer(raw_connection, count_sql)()[0][0]
            finally:
                raw_connection.close()
            db.session.remove()
            first_page, with_read_all = summarise(page), summarise(page_unrestricted)
            results[username][basket.id] = {
                "total": total,
                "first_page": first_page, "count": summarise(count),
                "first_page_with_read_all": with_read_all,
                "page_to_read_all": {
                    "p50": ratio(first_page["p50_ms"], with_read_all["p50_ms"]),
                    "p95": ratio(first_page["p95_ms"], with_read_all["p95_ms"]),
                },
                "raw_page": summarise(raw_page), "raw_count": summarise(raw_count),
                "raw_page_and_count": summarise(raw_both),
            }
            log.info("%s %s: %s mails, page p95 %s ms, count p95 %s ms", username, basket.id, total,
                     results[username][basket.id]["first_page"]["p95_ms"], results[username][basket.id]["count"]["p95_ms"])
    return results


def report(results: dict[str, Any]) -> str:
    """Return the table of milliseconds and ratios, one row per user and basket.

    ``page/read_all`` divides the page's p95 by the p95 of the same page with
    read_all, ``page/read_all p50`` does the same with the medians.
    """
    lines = ["user         basket            total   page p95  raw p95  count p95  raw p95  raw p+c p95  "
             "page/raw p+c  page/read_all  read_all p95  page p50  read_all p50  page/read_all p50"]
    for username, baskets in results.items():
        for basket_id, figures in baskets.items():
            to_read_all = figures["page_to_read_all"]
            raw_both = figures["raw_page_and_count"]["p95_ms"]
            raw_ratio = f"{figures['first_page']['p95_ms'] / raw_both:.2f}" if raw_both else ""
            with_read_all = figures["first_page_with_read_all"]
            lines.append(
                f"{username:<12} {basket_id:<16} {figures['total']:>7} {figures['first_page']['p95_ms']:>9} "
                f"{figures['raw_page']['p95_ms']:>8} {figures['count']['p95_ms']:>10} {figures['raw_count']['p95_ms']:>8} "
                f"{raw_both:>11} {raw_ratio:>13} {_format_ratio(to_read_all['p95']):>14} "
                f"{with_read_all['p95_ms']:>13} {figures['first_page']['p50_ms']:>9} {with_read_all['p50_ms']:>13} "
                f"{_format_ratio(to_read_all['p50']):>18}"
            )
    return "\n".join(lines)


def _format_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baskets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, required=True, help="Number of mails to bulk-load, e.g. 100000.")
    parser.add_argument("--repeat", type=int, default=30, help="Timed calls per measurement (default: 30).")
    parser.add_argument("--seed", type=int, default=2026, help="Random seed of the generated data (default: 2026).")
    parser.add_argument("--reuse-database", action="store_true", help="Measure the database of an earlier run.")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help=f"sqlite (default) or postgresql (database {POSTGRES_DATABASE} of scripts/ensure-postgres.sh).")
    parser.add_argument("--users", default=",".join(USERS), help=f"Comma-separated user names (default: {','.join(USERS)}).")
    parser.add_argument("--baskets", default="", help="Comma-separated basket ids to measure (default: all).")
    parser.add_argument("--output", type=Path,
                        help="JSON file (default: bench/results/baskets-<mails>[-postgresql].json).")
    arguments = parser.parse_args(argv)
    configure_bench_logging()

    if arguments.database == "postgresql":
        url = postgresql_url()
        if not arguments.reuse_database:
            reset_postgresql(url)
    else:
        path = BENCH_VAR_DIR / f"baskets-{arguments.mails}.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not arguments.reuse_database:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    app = create_bench_app(url)
    with app.app_context():
        loaded: dict[str, Any] = {}
        if not arguments.reuse_database:
            from app.extensions import db
            from bench.generate import load_mails

            started = time.perf_counter()
            build_schema(app)
            load_mails(arguments.mails, arguments.seed)
            db.session.remove()
            loaded = add_distribution_lists(arguments.seed)
            if arguments.database == "postgresql":
                analyse_postgresql(url)
            loaded["seconds"] = round(time.perf_counter() - started, 1)
            log.info("loaded %s mails and %s in %s s", arguments.mails, loaded, loaded["seconds"])
        usernames = tuple(name for name in arguments.users.split(",") if name)
        basket_ids = {name for name in arguments.baskets.split(",") if name} or None
        results = measure(arguments.repeat, usernames, basket_ids)
    print(report(results))
    suffix = "-postgresql" if arguments.database == "postgresql" else ""
    output = arguments.output or REPO / "bench" / "results" / f"baskets-{arguments.mails}{suffix}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"mails": arguments.mails, "database": arguments.database, "loaded": loaded, "results": results,
                                  "page_size": PAGE_SIZE, "repeat": arguments.repeat,
                                  "read_all_timing": "alternate calls with the user's own page",
                                  "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2), encoding="utf-8")
    log.info("results written to %s", output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


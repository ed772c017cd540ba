"""Timed measurements on a loaded register, run by ``bench.run`` in a fresh process.

A fresh process makes the memory figures those of a web worker that served
the basket pages, not those of the bulk loader. The phases run in this order:

1. the "À traiter" basket page through Flask's test client, per user;
2. the process memory (VmRSS, VmHWM) right after those pages;
3. the basket functions (``basket_page``, ``basket_counts``) without HTTP;
4. the same basket query and count written by hand in SQL, on the raw
   driver connection, and the plans of the SQL statements the page runs;
5. registrations through ``register_mail``, last because they add mail, by
   one writer or by several processes at once (``--writers``), as the
   portal's worker processes register mail on PostgreSQL.

Usage (normally through bench.run):
    python -m bench.measure --database-url URL --output FILE [--requests N] [--registrations N] [--writers N]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import multiprocessing
import os
import queue
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event, inspect, select

from bench.database import configure_bench_logging, create_bench_app

log = logging.getLogger("bench")

BASKET_ID = "to_process"
BASKET_PATH = f"/mail/basket/{BASKET_ID}"
# The plain agent of DMI-SSE-BPT, the head of DMI-SSE (three departments in scope), the administrator.
BASKET_USERS = ("sejour", "chef.sejour", "admin")
DEMO_PASSWORD = "estafette-demo"
WARMUP_REQUESTS = 10
# Statements whose median time is at least this many milliseconds get their plan recorded.
PLAN_THRESHOLD_MS = 0.5

CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
BASKET_TOTAL_PATTERN = re.compile(r'id="basket-total">(\d+)<')


# --- Statistics -------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``samples``, ``fraction`` in (0, 1]."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(len(ordered) * fraction))
    return ordered[rank - 1]


def summarise_ms(seconds: list[float]) -> dict[str, float]:
    """Return count, mean, p50, p95 and max of durations given in seconds, in milliseconds."""
    milliseconds = [value * 1000 for value in seconds]
    return {
        "count": len(milliseconds),
        "mean_ms": round(sum(milliseconds) / len(milliseconds), 3),
        "p50_ms": round(percentile(milliseconds, 0.50), 3),
        "p95_ms": round(percentile(milliseconds, 0.95), 3),
        "max_ms": round(max(milliseconds), 3),
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def process_memory() -> dict[str, int]:
    """Return VmRSS and VmHWM of this process from /proc/self/status, in KiB.

    getrusage()'s ru_maxrss is not used: on Linux it keeps the peak of the
    parent process across fork and exec, here that of the bulk loader.
    """
    memory: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                memory[f"{name}_kib"] = int(value.split()[0])
    return memory


# --- SQL statement recorder -----------------------------------------------------------


@dataclass
class _Statement:
    sql: str
    parameters: Any
    seconds: list[float] = field(default_factory=list)


class StatementRecorder:
    """Time every SQL statement of an engine while installed; only used on untimed passes."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.statements: dict[str, _Statement] = {}
        self.per_request: list[tuple[int, float]] = []
        self._count = 0
        self._seconds = 0.0

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_started")
        entry = self.statements.setdefault(statement, _Statement(statement, parameters))
        entry.seconds.append(elapsed)
        self._count += 1
        self._seconds += elapsed

    @contextmanager
    def installed(self) -> Iterator[StatementRecorder]:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        try:
            yield self
        finally:
            event.remove(self.engine, "before_cursor_execute", self._before)
            event.remove(self.engine, "after_cursor_execute", self._after)

    def end_request(self) -> None:
        self.per_request.append((self._count, self._seconds))
        self._count = 0
        self._seconds = 0.0

    def breakdown(self, requests: int) -> list[dict[str, Any]]:
        """Return each distinct statement with its executions per request and median time, slowest first."""
        rows = []
        for entry in self.statements.values():
            rows.append({
                "sql": " ".join(entry.sql.split()),
                "executions_per_request": round(len(entry.seconds) / requests, 2),
                "median_ms": round(percentile([value * 1000 for value in entry.seconds], 0.5), 3),
                "parameters": entry.parameters,
            })
        rows.sort(key=lambda row: row["median_ms"] * row["executions_per_request"], reverse=True)
        return rows


# --- Basket page through HTTP -----------------------------------------------------------


def login(client: Any, username: str) -> None:
    page = client.get("/login/").get_data(as_text=True)
    match = CSRF_PATTERN.search(page)
    if match is None:
        raise RuntimeError("no csrf_token found in the /login/ page: the login form changed")
    # An explicit next page keeps Flask-AppBuilder from logging "Invalid redirect detected".
    response = client.post(
        "/login/?next=/", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": match.group(1)}
    )
    if response.status_code != 302:
        raise RuntimeError(f"login of {username} failed with HTTP {response.status_code}")


def _get_basket_page(client: Any) -> str:
    response = client.get(BASKET_PATH)
    if response.status_code != 200:
        raise RuntimeError(f"GET {BASKET_PATH} returned HTTP {response.status_code}")
    return response.get_data(as_text=True)


def _time_pages(client: Any, requests: int) -> tuple[list[float], list[float]]:
    """Time ``requests`` GETs of the basket page; return wall times and CPU times of this thread."""
    durations = []
    cpu_durations = []
    for _ in range(requests):
        started = time.perf_counter()
        cpu_started = time.thread_time()
        _get_basket_page(client)
        cpu_durations.append(time.thread_time() - cpu_started)
        durations.append(time.perf_counter() - started)
    return durations, cpu_durations


def measure_basket_page(app: Flask, username: str, requests: int) -> dict[str, Any]:
    """Time ``requests`` GETs of the basket page for ``username``, then record their SQL on a short extra pass."""
    from app.extensions import db

    client = app.test_client()
    login(client, username)
    for _ in range(WARMUP_REQUESTS):
        html = _get_basket_page(client)
    total_match = BASKET_TOTAL_PATTERN.search(html)

    load_before = load_average()
    durations, cpu_durations = _time_pages(client, requests)
    # The same requests with the menu rendered and its counts computed at every page, as on a cache miss.
    cache_seconds = app.config.get("MENU_COUNTS_CACHE_SECONDS")
    app.config["MENU_COUNTS_CACHE_SECONDS"] = 0
    try:
        uncached_durations, _ = _time_pages(client, requests)
    finally:
        if cache_seconds is None:
            app.config.pop("MENU_COUNTS_CACHE_SECONDS")
        else:
            app.config["MENU_COUNTS_CACHE_SECONDS"] = cache_seconds

    with app.app_context():
        recorder = StatementRecorder(db.engine)
    sql_requests = min(requests, 20)
    with recorder.installed():
        for _ in range(sql_requests):
            _get_basket_page(client)
            recorder.end_request()

    counts = [count for count, _ in recorder.per_request]
    sql_seconds = [seconds for _, seconds in recorder.per_request]
    return {
        "username": username,
        "basket_total": int(total_match.group(1)) if total_match else None,
        "timing": summarise_ms(durations),
        "timing_without_menu_cache": summarise_ms(uncached_durations),
        # CPU time of this thread: less sensitive than wall time to other
        # processes on the machine, but it leaves out PostgreSQL's own work.
        "cpu_time": summarise_ms(cpu_durations),
        "statements_per_request": max(counts),
        "sql_time": summarise_ms(sql_seconds),
        "statements": recorder.breakdown(sql_requests),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


# --- Basket functions and raw SQL ------------------------------------------------------------


def _user_context(username: str) -> Any:
    from flask_appbuilder.security.sqla.models import User

    from app.extensions import db
    from app.organisation.context import build_user_context

    user = db.session.execute(select(User).where(User.username == username)).scalar_one()
    return build_user_context(user)


def _time_calls(function: Callable[[], Any], repeat: int, after: Callable[[], None]) -> list[float]:
    for _ in range(WARMUP_REQUESTS):
        function()
        after()
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
        after()
    return durations


def measure_basket_functions(username: str, repeat: int) -> dict[str, Any]:
    """Time basket_page() (page query and count) and the menu counts, each in a fresh session.

    The menu counts are timed through compute_basket_counts(), which
    basket_counts() calls when its per-user cache has no fresh entry.
    """
    from app.configuration.operations import current_configuration
    from app.extensions import db
    from app.mail.baskets import basket_page, compute_basket_counts

    user = _user_context(username)
    configuration = current_configuration()
    page_size = current_app.config["BASKET_PAGE_SIZE"]
    db.session.remove()
    page = _time_calls(
        lambda: basket_page(user, configuration, BASKET_ID, 1, page_size), repeat, db.session.remove
    )
    menu = _time_calls(lambda: compute_basket_counts(user, configuration), repeat, db.session.remove)
    return {"basket_page": summarise_ms(page), "basket_counts": summarise_ms(menu)}


# The "À traiter" basket (scope my_departments_tree, sorted by due date) with
# the visibility rule of app/mail/visibility.py for a user without delegations,
# written by hand. Inside the basket's scope every mail that is not
# confidential is visible, so the rule reduces to RAW_VISIBILITY. {scope} and
# {statuses} become lists of placeholders, {p} one placeholder, {limit} the
# page size. measure_raw_basket checks that its count equals count_basket(),
# so a change of the rule that this copy misses stops the run.
RAW_SELECT = """
SELECT mail.* FROM mail
WHERE mail.handling_department_id IN ({scope})
  AND mail.status IN ({statuses})
  {visibility}
ORDER BY mail.due_date ASC NULLS LAST, mail.id ASC
LIMIT {limit} OFFSET 0
"""
RAW_COUNT = """
SELECT count(*) FROM mail
WHERE mail.handling_department_id IN ({scope})
  AND mail.status IN ({statuses})
  {visibility}
"""
RAW_VISIBILITY = """AND (mail.confidential = FALSE OR mail.created_by_id = {p} OR mail.assignee_id = {p}
       {listed})"""
# Confidential mail whose distribution list names the user or a department in their scope.
RAW_LISTED = """OR EXISTS (SELECT 1 FROM distribution_entry
                  WHERE distribution_entry.mail_id = mail.id
                    AND (distribution_entry.user_id = {p} OR distribution_entry.department_id IN ({scope})))"""


@dataclass
class RawBasketQuery:
    select_sql: str
    count_sql: str
    parameters: list[Any]


def raw_basket_query(
    user: Any, statuses: list[str], placeholder: str, with_distribution: bool, page_size: int
) -> RawBasketQuery:
    """Fill the hand-written basket SQL for ``user`` with the driver's ``placeholder`` (? or %s).

    ``with_distribution`` adds the distribution-list part of the visibility
    rule, for databases that have the distribution_entry table.
    """
    scope = sorted(user.scope_department_ids)
    if not scope:
        raise ValueError(f"user {user.user_id} has no department: the hand-written basket SQL needs one")
    scope_marks = ", ".join([placeholder] * len(scope))
    status_marks = ", ".join([placeholder] * len(statuses))
    parameters: list[Any] = [*scope, *statuses]
    visibility = ""
    if not user.can("read_all"):
        listed = RAW_LISTED.format(p=placeholder, scope=scope_marks) if with_distribution else ""
        visibility = RAW_VISIBILITY.format(p=placeholder, listed=listed)
        parameters += [user.user_id, user.user_id]
        if with_distribution:
            parameters += [user.user_id, *scope]
    select_sql = RAW_SELECT.format(
        scope=scope_marks, statuses=status_marks, visibility=visibility, limit=int(page_size)
    )
    count_sql = RAW_COUNT.format(scope=scope_marks, statuses=status_marks, visibility=visibility)
    return RawBasketQuery(select_sql, count_sql, parameters)


def _placeholder(dialect: str) -> str:
    return "%s" if dialect == "postgresql" else "?"


def measure_raw_basket(username: str, repeat: int) -> dict[str, Any]:
    """Time the hand-written basket query and count on the raw driver connection."""
    from app.configuration.operations import current_configuration
    from app.extensions import db
    from app.mail.baskets import count_basket

    user = _user_context(username)
    basket = current_configuration().baskets[BASKET_ID]
    dialect = db.engine.dialect.name
    with_distribution = inspect(db.engine).has_table("distribution_entry")
    page_size = current_app.config["BASKET_PAGE_SIZE"]
    query = raw_basket_query(user, list(basket.statuses), _placeholder(dialect), with_distribution, page_size)
    expected_total = count_basket(user, basket)
    db.session.remove()

    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()

        def run_select() -> None:
            cursor.execute(query.select_sql, query.parameters)
            cursor.fetchall()

        def run_count() -> int:
            cursor.execute(query.count_sql, query.parameters)
            return int(cursor.fetchone()[0])

        def run_both() -> None:
            run_count()
            run_select()

        # SQLite connections of the application are in autocommit mode, so a
        # rollback ends the read transaction only on PostgreSQL.
        both = _time_calls(run_both, repeat, connection.rollback)
        select_only = _time_calls(run_select, repeat, connection.rollback)
        count_only = _time_calls(run_count, repeat, connection.rollback)
        total = run_count()
        connection.rollback()
        if total != expected_total:
            raise RuntimeError(
                f"the hand-written basket SQL counts {total} mails for {username} but count_basket() counts "
                f"{expected_total}: update RAW_SELECT, RAW_COUNT and RAW_VISIBILITY to the rule of app/mail/visibility.py"
            )
        plans = {
            "select": explain(cursor, dialect, query.select_sql, query.parameters),
            "count": explain(cursor, dialect, query.count_sql, query.parameters),
        }
        connection.rollback()
    finally:
        connection.close()
    return {
        "count_and_select": summarise_ms(both),
        "select": summarise_ms(select_only),
        "count": summarise_ms(count_only),
        "total": total,
        "select_sql": " ".join(query.select_sql.split()),
        "parameters": query.parameters,
        "plans": plans,
    }


def explain(cursor: Any, dialect: str, sql: str, parameters: Any) -> list[str]:
    """Return the plan of ``sql``: EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL."""
    if dialect == "postgresql":
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", parameters)
        return [row[0] for row in cursor.fetchall()]
    cursor.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
    return [row[3] for row in cursor.fetchall()]


def explain_page_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the plans of the page's statements that take at least PLAN_THRESHOLD_MS."""
    from app.extensions import db

    dialect = db.engine.dialect.name
    connection = db.engine.raw_connection()
    plans = []
    try:
        cursor = connection.cursor()
        for statement in statements:
            if statement["median_ms"] < PLAN_THRESHOLD_MS:
                continue
            plan = explain(cursor, dialect, statement["sql"], statement["parameters"])
            connection.rollback()
            plans.append({"sql": statement["sql"], "median_ms": statement["median_ms"], "plan": plan})
    finally:
        connection.close()
    return plans


# --- Registrations ----------------------------------------------------------------------


def measure_registrations(
    count: int, seed: int, barrier: Any = None, keep_samples: bool = False, letters: bool = False,
) -> dict[str, Any]:
    """Register ``count`` generated mails through register_mail, one after another.

    Only the register_mail calls are timed: the mails are generated before,
    and the benchmark's own bookkeeping is left out. Actors and
    correspondents are chosen as ``flask demo load`` chooses them: the mail
    room registers incoming mail, agents the rest, and a correspondent seen
    before is picked by id. With ``barrier``, the timed loop starts when every
    writer sharing it is ready. With ``keep_samples``, the result also holds
    every call's duration in seconds. With ``letters``, mail arriving by post,
    e-mail or web form comes with a one-page PDF letter, as ``flask demo load``
    registers it. The letters are rendered before the timed loop.
    """
    from flask_appbuilder.security.sqla.models import User

    from app.attachments.operations import Upload
    from app.configuration.operations import current_configuration
    from app.demo.cli import _Actors, _complete_required_fields, _correspondent_input
    from app.demo.users import DEMO_USERS
    from app.extensions import db
    from app.mail.models import Mail
    from app.mail.operations import Registration, register_mail, today_in_paris
    from bench.generate import generated_mails

    configuration = current_configuration()
    usernames = [user.username for user in DEMO_USERS]
    ids = dict(db.session.execute(select(User.username, User.id).where(User.username.in_(usernames))).tuples().all())
    actors = _Actors(ids)
    mails = list(generated_mails(count, seed, today_in_paris()))
    pdfs = [_letter_of(generated) if letters else None for generated in mails]
    mails_before = db.session.execute(select(Mail.id).order_by(Mail.id.desc()).limit(1)).scalar() or 0
    db.session.remove()

    known: dict[int, int] = {}
    durations = []
    cpu_seconds = 0.0
    load_before = load_average()
    if barrier is not None:
        # Every writer has generated its mails: they start registering together.
        barrier.wait()
    started_at = time.time()
    started = time.perf_counter()
    for number, (generated, pdf) in enumerate(zip(mails, pdfs, strict=True)):
        actor, department = actors.pick(generated["category"])
        correspondent = generated.get("correspondent")
        spec = configuration.mail_types[generated["mail_type_id"]]
        registration = Registration(
            mail_type=generated["mail_type_id"],
            subject=generated["subject"],
            arrival_date=generated["arrival_date"],
            letter_date=generated["letter_date"],
            channel=generated["channel"],
            priority=generated["priority"],
            confidential=False,
            handling_department=department,
            fields=_complete_required_fields(spec, generated["fields"], generated["arrival_date"]),
            correspondent=_correspondent_input(correspondent, known),
            uploads=[Upload(io.BytesIO(pdf), f"courrier-{seed}-{number:06d}.pdf", kind="letter")] if pdf else [],
        )
        call_started = time.perf_counter()
        cpu_started = time.process_time()
        mail = register_mail(actor, registration)
        cpu_seconds += time.process_time() - cpu_started
        durations.append(time.perf_counter() - call_started)
        # Untimed: reading the new correspondent's id costs a query that belongs to the benchmark.
        if correspondent is not None and id(correspondent) not in known:
            known[id(correspondent)] = mail.correspondents[0].correspondent_id
    loop_seconds = time.perf_counter() - started
    finished_at = time.time()
    operation_seconds = sum(durations)
    db.session.remove()
    result = {
        "registrations": count,
        "letters": sum(1 for pdf in pdfs if pdf),
        # Time spent inside register_mail, and registrations per second of it.
        "seconds": round(operation_seconds, 3),
        "per_second": round(count / operation_seconds, 1),
        "cpu_seconds": round(cpu_seconds, 3),
        "per_cpu_second": round(count / cpu_seconds, 1),
        # The whole loop, with building the Registration objects and reading new correspondents' ids.
        "loop_seconds": round(loop_seconds, 3),
        "latency": summarise_ms(durations),
        "last_mail_id_before": mails_before,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        # Wall-clock times, which writers in other processes of this machine share.
        "started_at": started_at,
        "finished_at": finished_at,
    }
    if keep_samples:
        result["samples_seconds"] = durations
    return result


def _letter_of(generated: dict[str, Any]) -> bytes | None:
    """Return the PDF letter of a generated mail that arrives by post, e-mail or web form, as the demo renders it."""
    from app.demo.letters import render_letter_pdf

    if generated["channel"] not in ("post", "email", "web"):
        return None
    return render_letter_pdf(generated, generated.get("correspondent"))


def _writer(url: str, count: int, seed: int, barrier: Any, results: Any, letters: bool) -> None:
    """Register ``count`` mails in a process of its own, as one worker process of the portal."""
    configure_bench_logging()
    app = create_bench_app(url)
    with app.app_context():
        results.put(measure_registrations(count, seed, barrier, keep_samples=True, letters=letters))


def measure_concurrent_registrations(url: str, count: int, seed: int, writers: int, letters: bool = False) -> dict[str, Any]:
    """Register ``count`` mails through register_mail from ``writers`` processes at once.

    Each writer registers its share of different generated mails (its own
    seed) on its own connection, and they start together. The rate is every
    registration over the time from the first start to the last end, so a
    writer waiting for another's registration-number lock counts against it,
    and so does each writer's untimed reading of a new correspondent's id.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    results = context.Queue()
    shares = [count // writers + (1 if index < count % writers else 0) for index in range(writers)]
    processes = [
        context.Process(target=_writer, args=(url, share, seed + index, barrier, results, letters))
        for index, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    # Read before joining: a process does not end while its result waits in the queue's pipe.
    measured: list[dict[str, Any]] = []
    while len(measured) < writers:
        try:
            measured.append(results.get(timeout=5))
        except queue.Empty:
            failed = [process.exitcode for process in processes if process.exitcode not in (None, 0)]
            if failed:
                # The others may wait at the barrier for the failed one.
                for process in processes:
                    process.terminate()
                raise RuntimeError(f"a registration writer failed with exit code {failed[0]}; "
                                   "its traceback is printed above") from None
    for process in processes:
        process.join()
    seconds = max(item["finished_at"] for item in measured) - min(item["started_at"] for item in measured)
    return {
        "registrations": count,
        "letters": sum(item["letters"] for item in measured),
        "writers": writers,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1),
        "cpu_seconds": round(sum(item["cpu_seconds"] for item in measured), 3),
        "per_cpu_second": round(count / sum(item["cpu_seconds"] for item in measured), 1),
        "per_writer": [
            {key: item[key] for key in ("registrations", "per_second", "latency")} for item in measured
        ],
        # Percentiles of every writer's calls together.
        "latency": summarise_ms([sample for item in measured for sample in item["samples_seconds"]]),
        "load_average_after": load_average(),
    }


# --- Entry point ----------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def run_measurements(
    url: str, requests: int, registrations: int, seed: int, writers: int = 1, letters: bool = False,
) -> dict[str, Any]:
    app = create_bench_app(url)
    results: dict[str, Any] = {"basket_pages": {}, "basket_functions": {}, "basket_raw_sql": {}, "page_plans": {}}

    users = BASKET_USERS if requests else ()
    for username in users:
        log.info("timing %s requests of %s as %s", requests, BASKET_PATH, username)
        results["basket_pages"][username] = measure_basket_page(app, username, requests)
    results["memory_after_pages"] = process_memory()

    with app.app_context():
        for username in users:
            log.info("timing the basket functions and the raw SQL as %s", username)
            results["basket_functions"][username] = measure_basket_functions(username, requests)
            results["basket_raw_sql"][username] = measure_raw_basket(username, requests)
            statements = results["basket_pages"][username]["statements"]
            results["page_plans"][username] = explain_page_statements(statements)
        if registrations and writers == 1:
            log.info("timing %s registrations through register_mail", registrations)
            results["registrations"] = measure_registrations(registrations, seed, letters=letters)
    if registrations and writers > 1:
        log.info("timing %s registrations through register_mail by %s writers", registrations, writers)
        results["registrations"] = measure_concurrent_registrations(url, registrations, seed, writers, letters)
    results["memory_at_end"] = process_memory()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.measure",
        description="Timed measurements on a loaded register; normally started by bench.run.",
    )
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL of the loaded database.")
    parser.add_argument("--output", required=True, help="JSON file to write the results to.")
    parser.add_argument(
        "--requests", type=int, default=200, help="Timed requests per user and per measurement; 0 skips the baskets."
    )
    parser.add_argument("--registrations", type=int, default=2000, help="Registrations to time (0 to skip).")
    parser.add_argument("--seed", type=int, default=2027, help="Random seed of the registered mails.")
    parser.add_argument(
        "--writers", type=int, default=1,
        help="Processes registering at once; 1 registers in this process (default: 1).",
    )
    parser.add_argument(
        "--letters", action="store_true", help="Register mail arriving by post, e-mail or web form with a PDF letter.",
    )
    args = parser.parse_args(argv)
    if args.writers < 1:
        parser.error(f"--writers must be at least 1, got {args.writers}")

    configure_bench_logging()
    results = run_measurements(args.database_url, args.requests, args.registrations, args.seed, args.writers,
                               args.letters)
    with open(args.output, "w", encoding="utf-8") as output:
        json.dump(results, output, indent=2, default=_json_default, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

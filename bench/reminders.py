"""Benchmark of the reminder sweep and of due-date computation.

    PYTHONPATH=. python -m bench.reminders --mails 1000000 --open 200000 --database sqlite
    PYTHONPATH=. python -m bench.reminders --mails 1000000 --open 200000 --database postgresql

It builds a fresh database (``bench.database``), then bulk-inserts bare mail
rows with their reminders: each open mail gets four pending reminders spread
over the next ``--spread-days`` days, and each closed mail two reminders
already sent. Then it measures:

- the sweep's query for due rows: its plan (SQLite ``EXPLAIN QUERY PLAN``,
  PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS)`` with the rows it read) and its
  time, when few rows are due;
- with ``--due`` reminders due, the plans of the due-row query and of the
  claim of one batch (PostgreSQL: executed, with the rows each node read);
- a scheduler pass (``send_due_reminders``) sending ``--due`` due reminders,
  with their notifications, queued e-mail and history, and the SQL
  statements it ran;
- ``compute_due_date`` plus ``plan_reminders`` for ``--registrations`` mails,
  per mail, without the database.

``--reuse-database`` skips the build and the load and measures the database
an earlier run left (its sent reminders included). ``--profile FILE`` writes
a cProfile of the sweep to FILE and prints its 25 most expensive functions.

Figures depend on the machine and its load; they are printed, not asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.database import (
    build_schema,
    configure_bench_logging,
    create_bench_app,
    database_url,
    log,
)

# Own database names, so that this benchmark never empties the one bench.run uses.
SQLITE_NAME = "reminders-{mails}.sqlite3"
POSTGRES_DATABASE = "estafette_bench_reminders"

BATCH = 20_000


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(table.insert(), rows)


def load(app: Any, mails: int, open_mails: int, spread_days: int, seed: int) -> dict[str, Any]:
    """Insert ``mails`` bare mails, ``open_mails`` of them open, with their reminders."""
    from app.configuration.operations import current_configuration
    from app.extensions import db
    from app.mail.models import Mail
    from app.organisation.models import Department, UserDepartment
    from app.reminders.models import Reminder

    rng = random.Random(seed)
    started = time.perf_counter()
    with app.app_context():
        configuration = current_configuration()
        version = configuration.version
        departments = [row for row in db.session.execute(sa.select(Department)).scalars() if row.active]
        members = db.session.execute(sa.select(UserDepartment.department_id, UserDepartment.user_id)).all()
        assignees: dict[int, list[int]] = {}
        for department_id, user_id in members:
            assignees.setdefault(department_id, []).append(user_id)
        db.session.commit()

        today = date.today()
        now = datetime.now(UTC)
        open_ids = set(rng.sample(range(1, mails + 1), open_mails))
        mail_table: sa.Table = Mail.__table__  # type: ignore[assignment]
        reminder_table: sa.Table = Reminder.__table__  # type: ignore[assignment]
        engine = db.engine
        mail_rows: list[dict[str, Any]] = []
        reminder_rows: list[dict[str, Any]] = []
        for number in range(1, mails + 1):
            department = departments[number % len(departments)]
            is_open = number in open_ids
            arrival = today - timedelta(days=rng.randint(0, 364) if not is_open else rng.randint(0, 40))
            due = arrival + timedelta(days=rng.randint(5, 90))
            mail_rows.append({
                "id": number, "chrono": f"BENCH/{number:07d}", "chrono_year": 1000 + number // 900_000,
                "chrono_number": number, "category": "incoming", "mail_type": "public_complaint",
                "subject": f"Réclamation {number}", "arrival_date": arrival, "due_date": due, "channel": "post",
                "priority": "normal", "confidential": False, "status": "in_progress" if is_open else "closed",
                "handling_department_id": department.id, "assignee_id": (assignees.get(department.id) or [None])[0],
                "fields": {}, "schema_version": version, "created_at": now, "updated_at": now, "row_version": 1,
            })
            if is_open:
                for step in range(4):
                    day = today + timedelta(days=rng.randint(1, spread_days))
                    reminder_rows.append(_reminder(number, step, due, day, "pending"))
            else:
                for step in range(2):
                    reminder_rows.append(_reminder(number, step, due, arrival, "sent"))
            if len(mail_rows) >= BATCH:
                with engine.begin() as connection:
                    _insert(connection, mail_table, mail_rows)
                    _insert(connection, reminder_table, reminder_rows)
                mail_rows, reminder_rows = [], []
                if number % 200_000 == 0:
                    log.info("%s mails loaded", number)
        with engine.begin() as connection:
            _insert(connection, mail_table, mail_rows)
            _insert(connection, reminder_table, reminder_rows)
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("ANALYZE mail"))
                connection.execute(sa.text("ANALYZE reminder"))
            total = connection.execute(sa.text("SELECT count(*) FROM reminder")).scalar_one()
    return {"load_seconds": round(time.perf_counter() - started, 1), "reminder_rows": total}


def _reminder(mail_id: int, step: int, due: date, day: date, state: str) -> dict[str, Any]:
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=8)
    return {
        "mail_id": mail_id, "kind": "step", "plan_id": "standard", "step_index": step, "occurrence": 1,
        "due_date": due, "remind_on": day, "due_at": at, "recipient_roles": ["assignee"], "state": state,
        "sent_at": at if state == "sent" else None, "outcome": {}, "created_at": at,
    }


def measure_due_query(app: Any) -> dict[str, Any]:
    """Time the sweep's due-row query with nothing due, and show the plan it uses."""
    from app.extensions import db
    from app.reminders.operations import due_reminder_ids

    now = datetime.now(UTC)
    with app.app_context():
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            due_reminder_ids(now)
            timings.append(time.perf_counter() - started)
        statement = (
            "SELECT id FROM reminder WHERE state = 'pending' AND due_at <= :now ORDER BY due_at LIMIT 500"
        )
        if db.engine.dialect.name == "sqlite":
            plan = db.session.execute(sa.text("EXPLAIN QUERY PLAN " + statement), {"now": now.replace(tzinfo=None)}).all()
            plan_text = [str(row[-1]) for row in plan]
        else:
            plan = db.session.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + statement), {"now": now}).scalars()
            plan_text = list(plan)
        db.session.rollback()
    return {"due_query_median_ms": round(statistics.median(timings) * 1000, 2), "plan": plan_text}


def _explain(statement: sa.Executable, dialect_name: str) -> list[str]:
    """Return the plan of ``statement``. PostgreSQL executes it (ANALYZE), so the caller rolls back."""
    from app.extensions import db

    compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    connection = db.session.connection()
    if dialect_name == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), compiled.positiontup and tuple(
            compiled.params[name] for name in compiled.positiontup
        ) or ()).all()
        return [str(row[-1]) for row in rows]
    return list(connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), compiled.params).scalars())


def explain_sweep(app: Any, now: datetime) -> dict[str, Any]:
    """Show the plans of the due-row query and of one batch claim while reminders are due."""
    from app.extensions import db
    from app.reminders.models import Reminder
    from app.reminders.operations import SWEEP_BATCH_SIZE, SWEEP_TRANSACTION_SIZE, claim_statement

    with app.app_context():
        dialect_name = db.engine.dialect.name
        due_query = (
            sa.select(Reminder.id)
            .where(Reminder.state == "pending", Reminder.due_at <= now)
            .order_by(Reminder.due_at)
            .limit(SWEEP_BATCH_SIZE)
        )
        due_plan = _explain(due_query, dialect_name)
        batch = list(db.session.execute(due_query.limit(SWEEP_TRANSACTION_SIZE)).scalars())
        claim_plan = _explain(claim_statement(batch, now), dialect_name)
        db.session.rollback()
    return {"due_query_plan_with_due_rows": due_plan, "claim_plan": claim_plan}


def measure_sweep(app: Any, due: int, profile_path: str | None = None) -> dict[str, Any]:
    """Make ``due`` pending reminders due now, then time one sweep that sends them.

    Reports wall time and this process's CPU time (the database server's CPU
    is not in it on PostgreSQL), counts the SQL statements the sweep runs,
    and profiles it with cProfile into ``profile_path`` when given.
    """
    from app.configuration.operations import current_configuration
    from app.extensions import db
    from app.reminders.models import Reminder
    from app.reminders.operations import send_due_reminders

    now = datetime.now(UTC)
    with app.app_context():
        ids = db.session.execute(
            sa.text("SELECT id FROM reminder WHERE state = 'pending' ORDER BY id LIMIT :count"), {"count": due}
        ).scalars().all()
        db.session.execute(
            sa.update(Reminder).where(Reminder.id.in_(ids)).values(due_at=now - timedelta(minutes=1))
        )
        db.session.commit()
    print(explain_sweep(app, now))
    with app.app_context():
        # A scheduler process keeps the parsed configuration between passes: parse it before timing.
        current_configuration()
        db.session.commit()
        statements = 0

        def count_statement(*_arguments: Any) -> None:
            nonlocal statements
            statements += 1

        sa.event.listen(db.engine, "before_cursor_execute", count_statement)
        profiler = cProfile.Profile() if profile_path else None
        try:
            started = time.perf_counter()
            cpu_started = time.process_time()
            if profiler is not None:
                profiler.enable()
            summary = send_due_reminders(now)
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count_statement)
    if profiler is not None and profile_path:
        profiler.dump_stats(profile_path)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return {"due_rows": due, "sent": summary.sent, "sweep_seconds": round(seconds, 3),
            "sweep_cpu_seconds": round(cpu_seconds, 3), "per_reminder_ms": round(seconds / max(due, 1) * 1000, 2), "sql_statements": statements,
            "load_average": os.getloadavg()}


def measure_due_dates(registrations: int, seed: int) -> dict[str, Any]:
    """Time compute_due_date plus plan_reminders for ``registrations`` mails, without the database."""
    from app.configuration.specs import ReminderPlanSpec
    from app.deadlines.calendar import compute_due_date, get_calendar
    from app.reminders.operations import plan_reminders

    rng = random.Random(seed)
    plan = ReminderPlanSpec.model_validate({
        "id": "standard", "labels": {"fr": "S", "en": "S"},
        "steps": [
            {"when": "before", "working_days": 3, "recipients": ["assignee"]},
            {"when": "on", "recipients": ["assignee"]},
            {"when": "after", "working_days": 5, "repeat_every": 5, "recipients": ["assignee", "department_head"]},
        ],
    })
    zones = ["metropole", "alsace_moselle", "la_reunion"]
    start = date(2026, 1, 1)
    inputs = [(start + timedelta(days=rng.randint(0, 729)), rng.choice([5, 15, 30, 60]), zones[i % 3]) for i in range(registrations)]
    for zone in zones:
        get_calendar(zone).add_working_days(start, 1)

    started = time.perf_counter()
    for arrival, delay, zone in inputs:
        compute_due_date(arrival, delay, "working", zone)
    due_only = time.perf_counter() - started

    started = time.perf_counter()
    for arrival, delay, zone in inputs:
        due = compute_due_date(arrival, delay, "working", zone)
        plan_reminders(due, plan, get_calendar(zone))
    with_plan = time.perf_counter() - started
    return {
        "registrations": registrations,
        "due_date_us_per_mail": round(due_only / registrations * 1e6, 2),
        "due_date_and_plan_us_per_mail": round(with_plan / registrations * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=1_000_000, help="mails to load")
    parser.add_argument("--open", type=int, default=200_000, help="open mails among them, each with 4 pending reminders")
    parser.add_argument("--spread-days", type=int, default=120, help="days over which pending reminders are spread")
    parser.add_argument("--due", type=int, default=1000, help="reminders made due for the timed sweep")
    parser.add_argument("--registrations", type=int, default=100_000, help="due dates computed for the timing")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse-database", action="store_true",
                        help="skip the build and the load, and measure the database an earlier run left")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the sweep to FILE and print its top")
    arguments = parser.parse_args()
    configure_bench_logging()

    print({"load_average": os.getloadavg()})
    print(measure_due_dates(arguments.registrations, arguments.seed))
    url = database_url(arguments.database, arguments.mails, fresh=not arguments.reuse_database,
                       sqlite_name=SQLITE_NAME, postgres_database=POSTGRES_DATABASE)
    app = create_bench_app(url)
    if not arguments.reuse_database:
        with app.app_context():
            build_schema(app)
        log.info("schema built on %s", arguments.database)
        print(load(app, arguments.mails, arguments.open, arguments.spread_days, arguments.seed))
    print(measure_due_query(app))
    print(measure_sweep(app, arguments.due, arguments.profile))
    print(measure_due_query(app))


if __name__ == "__main__":
    main()

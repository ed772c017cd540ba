"""Fresh benchmark databases: SQLite files under var/bench/ or a PostgreSQL database.

A database is built the way the test fixtures build theirs: Alembic
migrations, then the schema files of ``schemas/``, Flask-AppBuilder's
permissions and the demo agents.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

REPO = Path(__file__).resolve().parent.parent
BENCH_VAR_DIR = REPO / "var" / "bench"
ENSURE_POSTGRES = REPO / "scripts" / "ensure-postgres.sh"
POSTGRES_DATABASE = "estafette_bench"
BACKENDS = ("sqlite", "postgresql")

log = logging.getLogger("bench")


def configure_bench_logging() -> None:
    """Send the benchmark's progress lines (logger "bench", INFO) to stderr, apart from the application's log."""
    if log.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s bench: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def sqlite_path(mail_count: int) -> Path:
    """Return the file of the SQLite benchmark database for ``mail_count`` mails."""
    return BENCH_VAR_DIR / f"estafette-{mail_count}.sqlite3"


def remove_sqlite_database(path: Path) -> None:
    # The -wal and -shm files belong to the database: a stale WAL would be replayed into the new file.
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def start_postgresql(database: str = POSTGRES_DATABASE) -> str:
    """Start the private PostgreSQL cluster if needed and return the URL of ``database``.

    ``scripts/ensure-postgres.sh`` creates the database when missing and
    prints its SQLAlchemy URL as the last line of stdout. The cluster is left
    running afterwards because tests of other sessions may use it.
    """
    result = subprocess.run(
        [str(ENSURE_POSTGRES), "--database", database],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{ENSURE_POSTGRES.name} failed with exit code {result.returncode}:\n{result.stderr.strip()}"
        )
    lines = result.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("postgresql"):
        raise RuntimeError(f"{ENSURE_POSTGRES.name} printed no database URL, its stdout was {result.stdout!r}")
    return lines[-1]


def reset_postgresql(url: str) -> None:
    """Drop every table of the benchmark database, as the test fixtures do for theirs."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
            connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    finally:
        engine.dispose()


def database_url(backend: str, mail_count: int, fresh: bool, sqlite_name: str | None = None,
                 postgres_database: str = POSTGRES_DATABASE) -> str:
    """Return the URL of the benchmark database of ``backend``, emptied first when ``fresh``.

    A benchmark with databases of its own passes their names: ``sqlite_name``
    is a file name in var/bench/ and ``postgres_database`` a database name,
    each may hold ``{mails}`` for the mail count.
    """
    if backend == "sqlite":
        path = BENCH_VAR_DIR / sqlite_name.format(mails=mail_count) if sqlite_name else sqlite_path(mail_count)
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            remove_sqlite_database(path)
        elif not path.exists():
            raise FileNotFoundError(f"no SQLite benchmark database at {path}: run without --reuse-database first")
        return f"sqlite:///{path}"
    if backend == "postgresql":
        url = start_postgresql(postgres_database.format(mails=mail_count))
        if fresh:
            reset_postgresql(url)
        return url
    raise ValueError(f"invalid backend {backend!r}, expected one of {', '.join(BACKENDS)}")


def create_bench_app(url: str) -> Flask:
    """Create the application on ``url`` with the development settings.

    The log level is WARNING so that the registration benchmark does not print
    one INFO line per mail. The in-process scheduler is off, so that no
    background pass runs during the timings or takes SQLite's write lock.
    """
    from app import create_app

    overrides: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": url,
        "STORAGE_ROOT": str(BENCH_VAR_DIR / "storage"),
        "LOG_LEVEL": "WARNING",
        "SCHEDULER_MODE": "off",
    }
    return create_app("development", overrides)


def build_schema(app: Flask) -> None:
    """Run the migrations, apply ``schemas/`` and create the demo agents, inside an app context."""
    from flask_migrate import upgrade

    from app.configuration.operations import apply_directory, forget_cached_configuration
    from app.demo.cli import create_demo_users
    from app.extensions import db

    upgrade(directory=str(REPO / "migrations"))
    forget_cached_configuration()
    apply_directory(REPO / "schemas")
    app.appbuilder.add_permissions(update_perms=True)  # type: ignore[attr-defined]
    create_demo_users()
    db.session.commit()

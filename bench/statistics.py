"""Time the statistics dashboard of the whole prefecture over one year, as the administrator.

Example:
    PYTHONPATH=. python -m bench.statistics --mails 1000000
    PYTHONPATH=. python -m bench.statistics --mails 1000000 --reuse-database
    PYTHONPATH=. python -m bench.statistics --mails 1000000 --database postgresql

Steps: a fresh SQLite database ``var/bench/statistics-<mails>.sqlite3`` (or,
with ``--database postgresql``, the database ``estafette_bench_statistics``
of the private cluster of ``scripts/ensure-postgres.sh``) built
like the test database (``bench.database.build_schema``), the bulk load of
``bench.generate.load_mails`` (arrival dates spread over about one year),
copies and opinion requests added by ``bench.baskets.add_distribution_lists``,
then ``closed_at`` on closed mail, then ``flask statistics rebuild`` (the
bulk load bypasses the counters' listener). Then the dashboard page
``/statistics/`` for the year ending today is requested ``--repeat`` times
through the Flask test client, logged in as ``admin`` (read_all), and the
p50 and p95 of the server time are printed with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.baskets import add_distribution_lists, analyse_postgresql, percentile
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

USERNAME = "admin"
POSTGRES_DATABASE = "estafette_bench_statistics"


def postgresql_url() -> str:
    """Start the private PostgreSQL cluster if needed and return the URL of this benchmark's own database."""
    return start_postgresql(POSTGRES_DATABASE)


def sqlite_url(mails: int, reuse: bool) -> str:
    path = BENCH_VAR_DIR / f"statistics-{mails}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    elif not path.exists():
        raise FileNotFoundError(f"no benchmark database at {path}: run without --reuse-database first")
    return f"sqlite:///{path}"


def counters_ready() -> bool:
    from app.configuration.operations import current_configuration
    from app.extensions import db
    from app.statistics.counters import usable_counters

    ready = usable_counters(db.session.connection(), current_configuration())
    db.session.remove()
    return ready


def rebuild_statistics() -> float:
    """Run the statistics counters rebuild and return its duration in seconds."""
    from app.extensions import db
    from app.statistics.cli import rebuild

    started = time.perf_counter()
    counted = rebuild()
    db.session.remove()
    seconds = round(time.perf_counter() - started, 1)
    log.info("statistics counters rebuilt from %s mails in %s s", counted, seconds)
    return seconds


def _login(client: Any, username: str) -> None:
    from tests.conftest import login

    login(client, username)


def measure(app: Any, repeat: int, username: str) -> dict[str, Any]:
    """Request the dashboard ``repeat`` times after one warm-up and return the timings in milliseconds."""
    from app.mail.operations import today_in_paris

    today = today_in_paris()
    start = today - timedelta(days=364)
    url = f"/statistics/?start={start.isoformat()}&end={today.isoformat()}"
    client = app.test_client()
    _login(client, username)
    warm = client.get(url)
    if warm.status_code != 200:
        raise RuntimeError(f"{url} returned {warm.status_code}")

    samples: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} returned {response.status_code}")
    return {
        "url": url,
        "user": username,
        "p50_ms": round(percentile(samples, 0.50), 1),
        "p95_ms": round(percentile(samples, 0.95), 1),
        "max_ms": round(max(samples), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statistics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, required=True, help="Number of mails to bulk-load, e.g. 1000000.")
    parser.add_argument("--repeat", type=int, default=20, help="Timed requests (default: 20).")
    parser.add_argument("--seed", type=int, default=2026, help="Random seed of the generated data (default: 2026).")
    parser.add_argument("--reuse-database", action="store_true", help="Measure the database of an earlier run.")
    parser.add_argument("--load-only", action="store_true", help="Build and load the database, measure nothing.")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help=f"sqlite (default) or postgresql (database {POSTGRES_DATABASE} of scripts/ensure-postgres.sh).")
    parser.add_argument("--user", default=USERNAME, help=f"Demo user who opens the dashboard (default: {USERNAME}).")
    parser.add_argument("--output", type=Path, help="JSON file (default: bench/results/statistics-<mails>.json).")
    arguments = parser.parse_args(argv)
    configure_bench_logging()

    if arguments.database == "postgresql":
        url = postgresql_url()
        if not arguments.reuse_database:
            reset_postgresql(url)
    else:
        url = sqlite_url(arguments.mails, arguments.reuse_database)
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
            db.session.remove()
            loaded["statistics_rebuild_seconds"] = rebuild_statistics()
            if arguments.database == "postgresql":
                analyse_postgresql(url)
            loaded["seconds"] = round(time.perf_counter() - started, 1)
            log.info("loaded %s mails and %s in %s s", arguments.mails, loaded, loaded["seconds"])
        else:
            from flask_migrate import upgrade

            # Migrations added after the load apply to the kept database, and a database loaded
            # before the statistics counters existed gets them now.
            upgrade(directory=str(REPO / "migrations"))
            if not counters_ready():
                loaded["statistics_rebuild_seconds"] = rebuild_statistics()
        if arguments.load_only:
            return 0
        results = measure(app, arguments.repeat, arguments.user)
    print(json.dumps(results, indent=2))
    suffix = "-postgresql" if arguments.database == "postgresql" else ""
    output = arguments.output or REPO / "bench" / "results" / f"statistics-{arguments.mails}{suffix}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"mails": arguments.mails, "database": arguments.database, "loaded": loaded, "results": results,
                                  "repeat": arguments.repeat,
                                  "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2), encoding="utf-8")
    log.info("results written to %s", output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

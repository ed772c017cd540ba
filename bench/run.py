"""Build a register of N mails, time the registration and the basket page, report the figures.

Example:
    PYTHONPATH=. python -m bench.run --mails 100000 --database sqlite

Steps: a fresh database (migrations, schemas/, demo agents), the bulk load
of N generated mails (bench.generate), then the measurements (bench.measure)
in a fresh process. The figures are printed as a table and written as JSON,
by default under bench/results/ (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.database import (
    BACKENDS,
    REPO,
    configure_bench_logging,
    create_bench_app,
    database_url,
    sqlite_path,
)
from bench.statistics import counters_ready, rebuild_statistics

log = logging.getLogger("bench")

RESULTS_DIR = REPO / "bench" / "results"

# Targets for a register of one million mails on the benchmark machine.
TARGET_REGISTRATIONS_PER_SECOND = 300
TARGET_PAGE_P95_MS = 30
TARGET_MAX_RATIO_TO_RAW_SQL = 2.0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=(
            "Build a fresh Estafette database, bulk-load N generated mails, then time mail "
            "registration through register_mail and the 'À traiter' basket page "
            "(HTTP page, basket functions and the same query in raw SQL). "
            "Prints a table and writes the figures as JSON."
        ),
        epilog=(
            "The bulk loader bypasses register_mail for speed; the registrations per second "
            "are measured through register_mail. PostgreSQL runs on the private cluster of "
            "scripts/ensure-postgres.sh, database estafette_bench, which is emptied first."
        ),
    )

    parser.add_argument("--mails", type=int, required=True, help="Number of mails to bulk-load, e.g. 100000.")
    parser.add_argument("--database", choices=BACKENDS, required=True, help="Database backend to build and measure.")
    parser.add_argument(
        "--output", type=Path,
        help="JSON file for the results (default: bench/results/<database>-<mails>-<date>.json).",
    )
    parser.add_argument(
        "--requests", type=int, default=200,
        help="Timed requests of the basket page per user, and timed calls of each basket measurement (default: 200).",
    )
    parser.add_argument(
        "--registrations", type=int, default=2000,
        help="Registrations timed through register_mail after the basket measurements; 0 skips them (default: 2000).",
    )
    parser.add_argument(
        "--writers", type=int, default=1,
        help="Processes registering at once, as the portal's worker processes do on PostgreSQL (default: 1).",
    )
    parser.add_argument(
        "--letters", action="store_true",
        help="Register the timed mail arriving by post, e-mail or web form with a one-page PDF letter.",
    )
    parser.add_argument("--seed", type=int, default=2026, help="Random seed of the generated mail (default: 2026).")
    parser.add_argument(
        "--batch-size", type=int, default=5000, help="Mails per bulk-load transaction (default: 5000).",
    )
    parser.add_argument(
        "--reuse-database", action="store_true",
        help="Skip the build and the load, and measure the database a previous run left "
             "(the registrations of that run included).",
    )
    parser.add_argument(
        "--database-url",
        help="Measure the loaded database at this SQLAlchemy URL instead of the default benchmark database, "
             "for example the one bench.baskets built; implies --reuse-database.",
    )
    parser.add_argument(
        "--time-limit-minutes", type=float, default=40,
        help="Stop the run when the load and the measurements together exceed this many minutes (default: 40).",
    )
    args = parser.parse_args(argv)

    if args.mails < 0:
        parser.error(f"--mails must be 0 or more, got {args.mails}")
    if args.requests < 1:
        parser.error(f"--requests must be at least 1, got {args.requests}")
    if args.registrations < 0:
        parser.error(f"--registrations must be 0 or more, got {args.registrations}")
    if args.writers < 1:
        parser.error(f"--writers must be at least 1, got {args.writers}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.database_url:
        if not args.database_url.startswith(args.database):
            parser.error(f"--database-url {args.database_url} is not a {args.database} URL")
        args.reuse_database = True
    return args


# --- Machine and database facts ---------------------------------------------------------


def _read_key_values(path: str, keys: set[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as source:
            for line in source:
                name, _, value = line.partition(":")
                name = name.strip()
                if name in keys and name not in values:
                    values[name] = value.strip()
    except OSError:
        pass
    return values


def describe_machine() -> dict[str, Any]:
    cpu = _read_key_values("/proc/cpuinfo", {"model name"})
    memory = _read_key_values("/proc/meminfo", {"MemTotal"})
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": int(nproc) if nproc.isdigit() else os.cpu_count(),
        "cpu_model": cpu.get("model name"),
        "memory_total": memory.get("MemTotal"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
        "sqlite_library": sqlite3.sqlite_version,
    }


def describe_code() -> dict[str, Any]:
    """Return the git commit and the files of the application that differ from it."""

    def git(*arguments: str) -> str:
        result = subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "app", "migrations", "schemas", "config.py")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "uncommitted_changes": [line[3:] for line in changed.splitlines()],
    }


def describe_database(url: str, backend: str, mails: int) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            mail_count = connection.execute(sa.text("SELECT count(*) FROM mail")).scalar_one()
            facts: dict[str, Any] = {"backend": backend, "mail_rows": mail_count}
            if backend == "postgresql":
                facts["server_version"] = connection.execute(sa.text("SHOW server_version")).scalar_one()
                facts["size_bytes"] = connection.execute(
                    sa.text("SELECT pg_database_size(current_database())")
                ).scalar_one()
            else:
                facts["server_version"] = connection.execute(sa.text("SELECT sqlite_version()")).scalar_one()
                facts["size_bytes"] = Path(sa.engine.make_url(url).database or sqlite_path(mails)).stat().st_size
    finally:
        engine.dispose()
    return facts


# --- Steps --------------------------------------------------------------------------------


def build_and_load(url: str, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    from bench.database import build_schema
    from bench.generate import load_mails

    app = create_bench_app(url)
    with app.app_context():
        started = time.perf_counter()
        build_schema(app)
        schema_seconds = time.perf_counter() - started
        log.info("schema built in %.1f s", schema_seconds)
        result = load_mails(args.mails, args.seed, batch_size=args.batch_size, deadline=deadline)
        # The bulk load leaves the statistics counters invalid, and registrations skip invalid
        # counters. Rebuilt here, so that each registration updates them as in production.
        statistics_seconds = rebuild_statistics() if args.registrations else None
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    load = asdict(result)
    load["seconds"] = round(result.seconds, 1)
    load["mails_per_second"] = round(result.mails_per_second)
    return {"schema_seconds": round(schema_seconds, 1), "load": load, "statistics_rebuild_seconds": statistics_seconds}


def statistics_counters_valid(url: str) -> bool:
    """Return whether the statistics counters of the database at ``url`` are valid, so registrations update them."""
    app = create_bench_app(url)
    with app.app_context():
        ready = counters_ready()
        from app.extensions import db

        db.engine.dispose()
    return ready


def run_measure_process(url: str, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """Run bench.measure in a fresh Python process and return its results."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        output = Path(handle.name)
    command = [
        sys.executable, "-m", "bench.measure",
        "--database-url", url,
        "--output", str(output),
        "--requests", str(args.requests),
        "--registrations", str(args.registrations),
        "--writers", str(args.writers),
        "--seed", str(args.seed + 1),
        *(["--letters"] if args.letters else []),
    ]
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    remaining = max(1.0, deadline - time.monotonic())
    try:
        completed = subprocess.run(command, cwd=REPO, env=environment, timeout=remaining, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"bench.measure failed with exit code {completed.returncode} (its output is above)")
        return json.loads(output.read_text(encoding="utf-8"))
    except subprocess.TimeoutExpired:
        raise TimeoutError(
            f"measurements stopped: the run exceeded --time-limit-minutes {args.time_limit_minutes}"
        ) from None
    finally:
        output.unlink(missing_ok=True)


# --- Targets and report -------------------------------------------------------------------


def evaluate_targets(measurements: dict[str, Any]) -> list[dict[str, Any]]:
    """Compare the figures with the targets; each target is checked per user where it applies."""
    checks = []
    registrations = measurements.get("registrations")
    if registrations:
        checks.append({
            "target": f"registrations/s >= {TARGET_REGISTRATIONS_PER_SECOND} ({_writers(registrations)})",
            "value": registrations["per_second"],
            "met": registrations["per_second"] >= TARGET_REGISTRATIONS_PER_SECOND,
        })
    for username, page in measurements["basket_pages"].items():
        page_p95 = page["timing"]["p95_ms"]
        functions_p95 = measurements["basket_functions"][username]["basket_page"]["p95_ms"]
        raw_p95 = measurements["basket_raw_sql"][username]["count_and_select"]["p95_ms"]
        checks.append({
            "target": f"{username}: page p95 <= {TARGET_PAGE_P95_MS} ms",
            "value": page_p95,
            "met": page_p95 <= TARGET_PAGE_P95_MS,
        })
        pages = [("page", page_p95), ("basket_page()", functions_p95)]
        uncached = page.get("timing_without_menu_cache")
        if uncached:
            checks.append({
                "target": f"{username}: page, menu not cached, p95 <= {TARGET_PAGE_P95_MS} ms",
                "value": uncached["p95_ms"],
                "met": uncached["p95_ms"] <= TARGET_PAGE_P95_MS,
            })
            pages.append(("page, menu not cached,", uncached["p95_ms"]))
        for label, value in pages:
            ratio = value / raw_p95 if raw_p95 else float("inf")
            checks.append({
                "target": f"{username}: {label} p95 <= {TARGET_MAX_RATIO_TO_RAW_SQL:g} x raw SQL p95",
                "value": round(ratio, 2),
                "met": ratio <= TARGET_MAX_RATIO_TO_RAW_SQL,
            })
    return checks


def _writers(registrations: dict[str, Any]) -> str:
    """Return "1 writer" or "N writers" for the registrations' measurement."""
    writers = registrations.get("writers", 1)
    return f"{writers} writer{'s' if writers > 1 else ''}"


def _timing_cells(timing: dict[str, float]) -> str:
    return f"{timing['p50_ms']:>8.2f} {timing['p95_ms']:>8.2f}"


def format_report(results: dict[str, Any]) -> str:
    measurements = results["measurements"]
    lines = [
        f"Estafette benchmark: {results['mails']} mails on {results['database']['backend']} "
        f"{results['database']['server_version']}, {results['started_at']}",
    ]
    load = results.get("build", {}).get("load")
    if load:
        lines.append(
            f"Bulk load: {load['mails']} mails, {load['correspondents']} correspondents in {load['seconds']} s "
            f"({load['mails_per_second']} mails/s), {load['open_mails']} open"
        )
    registrations = measurements.get("registrations")
    if registrations:
        counters = "valid" if results["database"].get("statistics_counters_valid") else "invalid, not updated"
        lines.append(f"Statistics counters: {counters}")
        lines.append(
            f"Registrations through register_mail by {_writers(registrations)}: "
            f"{registrations['registrations']} ({registrations.get('letters', 0)} with a PDF letter) "
            f"in {registrations['seconds']} s = "
            f"{registrations['per_second']}/s (latency p50 {registrations['latency']['p50_ms']} ms, "
            f"p95 {registrations['latency']['p95_ms']} ms, {registrations['per_cpu_second']}/s of CPU time)"
        )

    lines.append("")
    lines.append("'À traiter' basket, milliseconds   p50      p95")
    for username, page in measurements["basket_pages"].items():
        functions = measurements["basket_functions"][username]
        raw = measurements["basket_raw_sql"][username]
        lines.append(f"{username} ({page['basket_total']} mails in the basket)")
        lines.append(f"  HTTP page                     {_timing_cells(page['timing'])}   {page['statements_per_request']} SQL statements")
        lines.append(f"  HTTP page, thread CPU time    {_timing_cells(page['cpu_time'])}")
        if "timing_without_menu_cache" in page:
            lines.append(f"  HTTP page, menu not cached    {_timing_cells(page['timing_without_menu_cache'])}")
        lines.append(f"  basket_page()                 {_timing_cells(functions['basket_page'])}")
        lines.append(f"  menu counts, not cached       {_timing_cells(functions['basket_counts'])}")
        lines.append(f"  raw SQL count + select        {_timing_cells(raw['count_and_select'])}")
        lines.append(f"  raw SQL select                {_timing_cells(raw['select'])}")
        lines.append(f"  raw SQL count                 {_timing_cells(raw['count'])}")
    memory = measurements["memory_after_pages"]
    lines.append("")
    lines.append(
        f"Worker memory after the pages: VmRSS {memory['VmRSS_kib'] / 1024:.0f} MiB, "
        f"VmHWM {memory['VmHWM_kib'] / 1024:.0f} MiB"
    )
    lines.append("")
    lines.append("Targets (set for 1,000,000 mails):")
    for check in results["targets"]:
        lines.append(f"  {'met   ' if check['met'] else 'MISSED'} {check['target']}: {check['value']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    configure_bench_logging()
    started_at = datetime.now().astimezone()
    deadline = time.monotonic() + args.time_limit_minutes * 60
    output = args.output or RESULTS_DIR / f"{args.database}-{args.mails}-{started_at:%Y%m%d-%H%M%S}.json"

    results: dict[str, Any] = {
        "command": "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "started_at": started_at.isoformat(timespec="seconds"),
        "mails": args.mails,
        "machine": describe_machine(),
        "code": describe_code(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }
    url = args.database_url or database_url(args.database, args.mails, fresh=not args.reuse_database)
    if not args.reuse_database:
        results["build"] = build_and_load(url, args, deadline)
    results["database"] = describe_database(url, args.database, args.mails)
    results["database"]["statistics_counters_valid"] = statistics_counters_valid(url)
    log.info("measuring in a fresh process")
    results["measurements"] = run_measure_process(url, args, deadline)
    results["targets"] = evaluate_targets(results["measurements"])
    results["seconds"] = round((datetime.now().astimezone() - started_at).total_seconds(), 1)

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print(format_report(results))
    print(f"\nResults written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

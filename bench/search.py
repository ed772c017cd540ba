"""Search benchmark: indexing throughput and query latency per backend, against the raw engine query.

    PYTHONPATH=. python -m bench.search --mails 100000 --database sqlite --backend embedded
    PYTHONPATH=. python -m bench.search --mails 100000 --database postgresql --backend embedded
    PYTHONPATH=. python -m bench.search --mails 100000 --backend opensearch --reuse-database --opensearch-url http://127.0.0.1:59300

The OpenSearch run indexes the register of the SQLite run with the same number of mails (``--reuse-database``).
On PostgreSQL, ``--copy-of estafette_bench_baskets`` starts from a copy of the
register of bench.baskets (seconds with CREATE DATABASE ... TEMPLATE, where the
bulk load of a million mails took about 45 minutes in an earlier run) and indexes it.

The register is bulk-loaded by bench.generate (no attachment files); a share
of the mails (``--attachment-share``, 10 % by default) gets a generated
attachment text of about 2,000 characters. Each of the 20 queries is timed
through the backend's search() (total, four facets, one page with
snippets, visibility applied), as the raw engine query (the match alone,
first page and exact total) and, for the embedded backend, as the very SQL
statements search() sent, replayed on the DB-API connection. Each runs
``--repeat`` times; p50 and p95 are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text as sql_text

from bench.database import (
    REPO,
    build_schema,
    configure_bench_logging,
    create_bench_app,
    database_url,
)
from bench.generate import load_mails
from bench.measure import percentile

log = logging.getLogger("bench.search")

ATTACHMENT_WORDS = (
    "arrêté préfectoral portant autorisation d'exploiter une installation classée pour la protection de "
    "l'environnement considérant le rapport de l'inspection le pétitionnaire la commune de Saint-Denis "
    "les riverains l'enquête publique le commissaire enquêteur avis favorable réserves prescriptions "
    "techniques bruit poussières circulation des poids lourds horaires d'ouverture demande de dérogation"
).split()

# (text, filters, user): rare and very common words, with and without filters.
QUERIES: list[tuple[str, dict[str, Any], str]] = [
    ("demande", {}, "admin"),
    ("demande", {}, "secretaire.general"),
    ("demande", {"mail_types": ["residence_permit_request"]}, "chef.sejour"),
    ("demande de titre de séjour", {}, "chef.sejour"),
    ("séjour", {"statuses": ["new"]}, "admin"),
    ("subvention association", {}, "subventions"),
    ("subvention", {"department": "DCPPAT"}, "admin"),
    ("naturalisation", {}, "naturalisation"),
    ("réclamation", {"categories": ["incoming"]}, "admin"),
    ("Saint-Denis", {}, "admin"),
    ("l’arrêté préfectoral", {}, "admin"),
    ("enquête publique", {}, "admin"),
    ("commissaire enquêteur", {"sort": "date_desc"}, "admin"),
    ("PREF75/2026/A/000123", {}, "admin"),
    ("2026/A/123", {}, "admin"),
    ("manifestation", {"due_band": "overdue"}, "manifestations"),
    ("cœur", {}, "admin"),
    ("dérogation", {}, "secretaire.general"),
    ("", {"mail_types": ["public_complaint"]}, "admin"),
    ("zzzinconnu", {}, "admin"),
]


# Databases of their own, so that this benchmark and bench.run or bench.baskets never empty each other's.
SQLITE_NAME = "search-{mails}.sqlite3"
POSTGRES_DATABASE = "estafette_bench_search_{mails}"


def search_database_url(database: str, mails: int, fresh: bool) -> str:
    """Return the URL of this benchmark's database, emptied first when ``fresh``."""
    return database_url(database, mails, fresh, sqlite_name=SQLITE_NAME, postgres_database=POSTGRES_DATABASE)


def copy_postgresql_database(source: str, target: str) -> None:
    """Drop ``target`` and create it again as a copy of ``source``, on the private cluster."""
    import sqlalchemy as sa

    from bench.database import start_postgresql

    engine = sa.create_engine(start_postgresql(target).rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": source}).first() is None:
                raise SystemExit(f"database {source} not found on the private cluster: run the benchmark that loads it first")
            # The names are quoted into the text because CREATE DATABASE takes no parameters.
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{target}"'))
            connection.execute(sa.text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    finally:
        engine.dispose()
    log.info("database %s created as a copy of %s", target, source)


def attachment_text(rng: random.Random) -> str:
    return " ".join(rng.choice(ATTACHMENT_WORDS) for _ in range(300))


def index_everything(backend: Any, share: float, batch: int = 1000) -> dict[str, Any]:
    from sqlalchemy import select

    from app.core.db import run_in_write_transaction
    from app.extensions import db
    from app.mail.models import Mail
    from app.search.indexer import _documents

    rng = random.Random(7)
    started = time.perf_counter()
    indexed = after = 0
    while True:
        ids = list(db.session.execute(select(Mail.id).where(Mail.id > after).order_by(Mail.id).limit(batch)).scalars())
        if not ids:
            break
        documents, _, _, _ = _documents(ids)
        for document in documents:
            if rng.random() < share:
                document.attachment_text = attachment_text(rng)
        db.session.commit()
        if backend.in_database:
            run_in_write_transaction(lambda batch_documents=documents: backend.write(batch_documents, []), "bench index")
        else:
            backend.write(documents, [])
        indexed += len(documents)
        after = ids[-1]
        if indexed % 50000 < batch:
            log.info("indexed %s mails (%.0f mails/s)", indexed, indexed / (time.perf_counter() - started))
    seconds = time.perf_counter() - started
    return {"mails": indexed, "seconds": round(seconds, 1), "mails_per_second": round(indexed / seconds, 1)}


def raw_query(backend: Any, text: str) -> Any:
    """Return a function running the engine's own match query: first page of 20 and total, nothing else."""
    from sqlalchemy import text as sql

    from app.extensions import db
    from app.search.analysis import parse_query
    from app.search.backends.embedded import fts5_expression, tsquery_expression

    parsed = parse_query(text)
    if backend.name == "embedded":
        if db.engine.dialect.name == "sqlite":
            expression = fts5_expression(parsed)
            page = sql("SELECT rowid FROM search_document_fts WHERE search_document_fts MATCH :e ORDER BY rank LIMIT 20")
            total = sql("SELECT count(*) FROM search_document_fts WHERE search_document_fts MATCH :e")
        else:
            expression = tsquery_expression(parsed)
            page = sql("SELECT mail_id FROM search_document WHERE terms_vector @@ to_tsquery('simple', :e) "
                       "ORDER BY ts_rank(terms_vector, to_tsquery('simple', :e)) DESC LIMIT 20")
            total = sql("SELECT count(*) FROM search_document WHERE terms_vector @@ to_tsquery('simple', :e)")
        if not expression:
            return lambda: None

        def run_sql() -> None:
            db.session.execute(page, {"e": expression}).all()
            db.session.execute(total, {"e": expression}).scalar()

        return run_sql
    body = {"query": {"match": {"all_text": {"query": text or "x", "operator": "and"}}}, "size": 20, "track_total_hits": True}
    return lambda: backend.adapter.search(backend.alias, body)


def time_calls(function: Any, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def same_statements(backend: Any, run_search: Any) -> Any:
    """Return a function running, on the raw DB-API connection, the SQL statements one search sends.

    It times the engine's own work for the same statements without the
    application around them: building the query, reading rows into Python,
    facets, snippets. None for a cluster backend, whose request is one call.
    """
    from sqlalchemy import event

    from app.extensions import db

    if not backend.in_database:
        return None
    statements: list[tuple[str, Any]] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        run_search()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    cursor = db.session.connection().connection.cursor()

    def run_sql() -> None:
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            if cursor.description is not None:
                cursor.fetchall()

    return run_sql


def measure_queries(backend: Any, repeat: int, warmup_rounds: int = 0) -> list[dict[str, Any]]:
    from app.search.criteria import SearchRequest
    from app.search.operations import search
    from tests.conftest import user_context

    for _ in range(warmup_rounds):
        for text, filters, username in QUERIES:
            search(user_context(username), SearchRequest(text=text, **filters), backend=backend)
    rows = []
    for text, filters, username in QUERIES:
        user = user_context(username)
        request = SearchRequest(text=text, **filters)
        result = search(user, request, backend=backend)
        full = time_calls(lambda user=user, request=request: search(user, request, backend=backend), repeat)
        raw = time_calls(raw_query(backend, text), repeat)
        row = {
            "query": text, "filters": filters, "user": username, "total": result.total,
            "total_is_exact": result.total_is_exact,
            "p50_ms": round(percentile(full, 0.5), 2), "p95_ms": round(percentile(full, 0.95), 2),
            "raw_p50_ms": round(percentile(raw, 0.5), 2), "raw_p95_ms": round(percentile(raw, 0.95), 2),
        }
        same = same_statements(backend, lambda user=user, request=request: search(user, request, backend=backend))
        if same is not None:
            statements = time_calls(same, repeat)
            row["same_sql_p50_ms"] = round(percentile(statements, 0.5), 2)
            row["same_sql_p95_ms"] = round(percentile(statements, 0.95), 2)
        rows.append(row)
        log.info("%-28s %-14s total %6s%s p50 %6.1f p95 %6.1f | raw match p50 %6.1f p95 %6.1f | same SQL p95 %6s ms",
                 text[:28], username, result.total, "" if result.total_is_exact else "+", row["p50_ms"], row["p95_ms"],
                 row["raw_p50_ms"], row["raw_p95_ms"], row.get("same_sql_p95_ms", "-"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=100000, help="Mails to load and index.")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--backend", choices=("embedded", "opensearch"), default="embedded")
    parser.add_argument("--opensearch-url", default="http://127.0.0.1:59200")
    parser.add_argument("--attachment-share", type=float, default=0.1, help="Share of mails given attachment text, 0 to 1.")
    parser.add_argument("--repeat", type=int, default=20, help="Timed runs of each query.")
    parser.add_argument("--reuse-database", action="store_true", help="Measure the database of an earlier run.")
    parser.add_argument("--reuse-index", action="store_true",
                        help="With --reuse-database, measure the queries on the index of that earlier run.")
    parser.add_argument("--warmup", type=int, default=0, metavar="ROUNDS",
                        help="Untimed runs of all the queries before timing them. On a node started just before, the Java JIT "
                             "still compiles the search code during the first queries, which took up to 5 times longer "
                             "at 100,000 mails.")
    parser.add_argument("--copy-of", metavar="DATABASE", default=None,
                        help="PostgreSQL only: replace this benchmark's database with a copy of DATABASE, "
                             "a register loaded by another benchmark, then index it.")
    parser.add_argument("--output", type=Path, default=None, help="JSON file of the figures.")
    arguments = parser.parse_args()
    configure_bench_logging()

    if arguments.copy_of:
        if arguments.database != "postgresql" or arguments.reuse_database:
            parser.error("--copy-of needs --database postgresql and replaces --reuse-database")
        copy_postgresql_database(arguments.copy_of, POSTGRES_DATABASE.format(mails=arguments.mails))
        arguments.reuse_database = True
    url = search_database_url(arguments.database, arguments.mails, fresh=not arguments.reuse_database)
    app = create_bench_app(url)
    figures: dict[str, Any] = {"mails": arguments.mails, "database": arguments.database, "backend": arguments.backend}
    with app.app_context():
        if not arguments.reuse_database:
            build_schema(app)
            started = time.perf_counter()
            load_mails(arguments.mails, seed=42, today=date.today())
            figures["load_seconds"] = round(time.perf_counter() - started, 1)
        # End the read transaction the loader's lookups opened: its snapshot predates the mails.
        from app.extensions import db

        db.session.commit()
        if arguments.backend == "embedded":
            from app.search.backends.embedded import EmbeddedBackend

            backend: Any = EmbeddedBackend()
        else:
            from app.search.backends.cluster import cluster_backend

            backend = cluster_backend("opensearch", arguments.opensearch_url, f"estafette-bench-{arguments.mails}", timeout=120)
            if not (arguments.reuse_database and arguments.reuse_index):
                for name in backend.adapter.alias_targets(backend.alias):
                    backend.adapter.delete_index(name)
        if not (arguments.reuse_database and arguments.reuse_index):
            figures["indexing"] = index_everything(backend, arguments.attachment_share)
        if arguments.backend == "opensearch":
            backend.adapter.refresh(backend.alias)
        elif arguments.database == "postgresql":
            # As autovacuum would after a bulk load: the planner needs statistics on the new index rows.
            db.session.execute(sql_text("ANALYZE search_document"))
            db.session.commit()
        figures["warmup_rounds"] = arguments.warmup
        figures["queries"] = measure_queries(backend, arguments.repeat, arguments.warmup)

    full = sorted(row["p95_ms"] for row in figures["queries"])
    figures["worst_p95_ms"] = full[-1]
    output = arguments.output or REPO / "bench" / "results" / f"search-{arguments.backend}-{arguments.database}-{arguments.mails}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2, ensure_ascii=False, default=str))
    print(json.dumps({key: value for key, value in figures.items() if key != "queries"}, ensure_ascii=False))
    print(f"figures written to {output}")


if __name__ == "__main__":
    main()

"""Benchmark of acknowledgement-of-receipt (AR) generation: .docx, then PDF through LibreOffice.

    PYTHONPATH=. python -m bench.acknowledgements --count 1000
    PYTHONPATH=. python -m bench.acknowledgements --count 1000 --database postgresql

It builds a fresh database (``bench.database``), registers ``--count``
grant requests through ``register_mail`` (one sender each, no e-mail
address), then measures:

1. ``generate_acknowledgement(..., convert=False)`` for every mail: the whole
   operation (merge context from the database, docxtpl rendering, content
   store, document and version rows, history), one transaction per AR;
2. the PDF conversion of all the .docx files with ``convert_many``, on
   batches of ``--batch-sizes`` files, which it splits into soffice calls of
   at most BATCH_SIZE (100) files;
3. one soffice call per file, on ``--single-sample`` files only; the time for
   ``--count`` files is extrapolated from it and printed as an estimate;
4. ``print_pending`` on at most MAX_PRINT_BATCH pending ARs: generation,
   conversion in soffice calls of BATCH_SIZE files, merging into one PDF, marking them sent.

Steps 2 to 4 are skipped when LibreOffice is not installed. The 1-minute load
average is printed before each step: the machine may be shared. Figures are
printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import timedelta
from typing import Any

from bench.database import (
    BENCH_VAR_DIR,
    build_schema,
    configure_bench_logging,
    create_bench_app,
    log,
    remove_sqlite_database,
    reset_postgresql,
    start_postgresql,
)

SQLITE_NAME = "acknowledgements-{count}.sqlite3"
POSTGRES_DATABASE = "estafette_bench_acknowledgements"


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def user_context(username: str) -> Any:
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy import select

    from app.extensions import db
    from app.organisation.context import build_user_context

    return build_user_context(db.session.execute(select(User).where(User.username == username)).scalar_one())


def _database(backend: str, count: int) -> str:
    if backend == "sqlite":
        path = BENCH_VAR_DIR / SQLITE_NAME.format(count=count)
        BENCH_VAR_DIR.mkdir(parents=True, exist_ok=True)
        remove_sqlite_database(path)
        return f"sqlite:///{path}"
    url = start_postgresql().rsplit("/", 1)[0] + f"/{POSTGRES_DATABASE}"
    reset_postgresql(url)
    return url


def _register(count: int) -> list[tuple[int, int]]:
    """Register ``count`` grant requests; return (mail id, sender id) pairs."""
    from app.correspondents.operations import CorrespondentInput
    from app.mail.operations import Registration, register_mail, today_in_paris

    clerk = user_context("courrier")
    start = today_in_paris() - timedelta(days=60)
    pairs = []
    for index in range(count):
        mail = register_mail(clerk, Registration(
            mail_type="grant_request", subject=f"Demande de subvention n° {index} – fête « A & B »",
            arrival_date=start + timedelta(days=index % 50), fields={"amount_requested": str(1000 + index)},
            correspondent=CorrespondentInput(
                kind="organisation", civility="Madame", first_name="Odile", last_name=f"Perrin-{index}",
                organisation=f"Association {index}", address=f"{index} rue des Lilas\nBâtiment B",
                postcode="75015", city="Paris", confirm_new=True,
            ),
        ))
        pairs.append((mail.id, next(link.correspondent_id for link in mail.correspondents)))
    return pairs


def _generate(pairs: list[tuple[int, int]]) -> tuple[float, list[bytes]]:
    from app.documents.acknowledgements import generate_acknowledgement
    from app.documents.operations import version_docx_bytes

    agent = user_context("subventions")
    started = time.perf_counter()
    versions = [generate_acknowledgement(agent, mail_id, sender_id, "fr", convert=False).version
                for mail_id, sender_id in pairs]
    elapsed = time.perf_counter() - started
    return elapsed, [version_docx_bytes(version) or b"" for version in versions]


def _convert_batches(documents: list[bytes], batch_size: int) -> float:
    from app.documents.conversion import convert_many

    started = time.perf_counter()
    for offset in range(0, len(documents), batch_size):
        pdfs = convert_many(documents[offset:offset + batch_size])
        assert all(pdf.startswith(b"%PDF") for pdf in pdfs)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="number of ARs (default 1000)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--batch-sizes", default="20,100",
                        help="files per convert_many call, comma-separated; it splits them into calls of BATCH_SIZE (100) files")
    parser.add_argument("--single-sample", type=int, default=10, help="files converted one soffice call each")
    parser.add_argument("--skip-print", action="store_true", help="do not measure print_pending")
    args = parser.parse_args(argv)
    configure_bench_logging()

    app = create_bench_app(_database(args.database, args.count))
    with app.app_context():
        build_schema(app)
        print(f"registering {args.count} grant requests (load {_load()})")
        started = time.perf_counter()
        pairs = _register(args.count)
        print(f"  registered in {time.perf_counter() - started:.1f} s")

        print(f"1. generate {args.count} ARs as .docx (load {_load()})")
        elapsed, documents = _generate(pairs)
        print(f"  {elapsed:.1f} s in all, {1000 * elapsed / args.count:.1f} ms per AR,"
              f" {sum(map(len, documents)) / len(documents) / 1024:.0f} KiB per .docx")

        if shutil.which("soffice") is None:
            print("LibreOffice is not installed: PDF steps skipped")
            return 0
        for size in [int(item) for item in args.batch_sizes.split(",") if item]:
            print(f"2. convert {len(documents)} .docx to PDF, {size} files per soffice call (load {_load()})")
            elapsed = _convert_batches(documents, size)
            print(f"  {elapsed:.1f} s in all, {1000 * elapsed / len(documents):.0f} ms per AR")

        sample = documents[:args.single_sample]
        print(f"3. convert {len(sample)} .docx one soffice call each (load {_load()})")
        elapsed = _convert_batches(sample, 1)
        per_file = elapsed / len(sample)
        print(f"  {per_file:.2f} s per AR; estimate for {args.count}: {per_file * args.count / 60:.0f} min")

        if not args.skip_print:
            _measure_print(pairs)
    log.info("done")
    return 0


def _measure_print(pairs: list[tuple[int, int]]) -> None:
    """Cancel the generated ARs, so that print_pending generates, converts, merges and marks a full batch."""
    from sqlalchemy import update

    from app.documents.acknowledgements import MAX_PRINT_BATCH, print_pending
    from app.documents.models import Document
    from app.extensions import db

    db.session.execute(update(Document).values(state="cancelled"))
    db.session.commit()
    print(f"4. print_pending: up to {MAX_PRINT_BATCH} ARs generated, converted, merged (load {_load()})")
    started = time.perf_counter()
    batch = print_pending(user_context("subventions"), "fr")
    elapsed = time.perf_counter() - started
    size = len(batch.pdf or b"") / 1024 / 1024
    print(f"  {len(batch.printed)} ARs in {elapsed:.1f} s, {1000 * elapsed / max(1, len(batch.printed)):.0f} ms per AR,"
          f" merged PDF {size:.1f} MiB, {len(batch.failed)} refused")
    assert len(pairs) >= len(batch.printed)


if __name__ == "__main__":
    raise SystemExit(main())


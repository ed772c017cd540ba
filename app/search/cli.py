"""`flask search reindex|status|drain`: rebuild, check and feed the search index."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select
from tqdm import tqdm

from app.extensions import db
from app.mail.models import Mail
from app.search.backends import BackendUnavailable, configured_backend
from app.search.indexer import drain, index_status, reindex

search_cli = AppGroup("search", help="Rebuild, check and feed the search index.")


@search_cli.command("reindex", help="Rebuild the whole index from the database; searches keep working meanwhile.")
@click.option("--batch", default=500, show_default=True, help="Mails indexed per transaction.")
def reindex_command(batch: int) -> None:
    backend = configured_backend()
    total = db.session.execute(select(func.count()).select_from(Mail)).scalar_one()
    try:
        with tqdm(total=total, unit="mail", desc=f"reindex ({backend.name})") as bar:
            indexed = reindex(backend, batch=batch, progress=bar.update)
    except BackendUnavailable as error:
        raise click.ClickException(f"the {backend.name} search backend failed: {error}; nothing was swapped in, run the command again") from error
    click.echo(f"{indexed} mails indexed by the {backend.name} backend.")


@search_cli.command("status", help="Compare the mails in the database with the index; exit 1 when they differ.")
def status_command() -> None:
    backend = configured_backend()
    try:
        status = index_status(backend)
    except BackendUnavailable as error:
        raise click.ClickException(f"the {backend.name} search backend is unavailable: {error}") from error
    click.echo(f"backend: {backend.name}")
    click.echo(f"mails in the database: {status.mails}")
    click.echo(f"mails in the index: {status.indexed}")
    click.echo(f"missing from the index: {status.missing}")
    click.echo(f"indexed before their last change: {status.stale}")
    click.echo(f"changes waiting in the outbox: {status.pending_events}")
    click.echo(f"attachments waiting for OCR: {status.pending_ocr}")
    if status.missing or status.stale or status.indexed != status.mails:
        raise SystemExit(1)


@search_cli.command("drain", help="Index the changes waiting in the outbox, OCR included.")
def drain_command() -> None:
    backend = configured_backend()
    result = drain(backend)
    click.echo(f"{result.indexed} mails indexed, {result.deleted} removed, {result.recognised} attachments read by OCR.")
    if result.failed:
        raise click.ClickException(f"the {backend.name} search backend is unavailable: the remaining changes stay in the outbox")

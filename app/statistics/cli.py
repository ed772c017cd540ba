"""`flask statistics rebuild`: recompute the statistics counters from the mail rows."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.configuration.operations import current_configuration
from app.core.db import run_in_write_transaction
from app.extensions import db
from app.statistics.counters import rebuild_counters

statistics_cli = AppGroup("statistics", help="Maintain the counters of the statistics dashboard.")


def rebuild() -> int:
    """Rebuild every counter in one write transaction and return the number of mails counted."""
    configuration = current_configuration()
    return run_in_write_transaction(lambda: rebuild_counters(db.session.connection(), configuration),
                                    "statistics counters rebuild")


@statistics_cli.command(
    "rebuild",
    help="Recompute every statistics counter from the mail rows. Run it after a bulk load or an SQL update of mail, "
         "and after a configuration change of statuses, assigning actions or department calendars.",
)
def rebuild_command() -> None:
    counted = rebuild()
    click.echo(f"Statistics counters rebuilt from {counted} mails.")

"""`flask schemas check` and `flask schemas apply`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from app.configuration.errors import SchemaError
from app.configuration.loader import Configuration, LoadFailed, load_directory
from app.configuration.operations import apply_directory, removals_in_use
from app.extensions import db

log = logging.getLogger(__name__)

schemas_cli = AppGroup("schemas", help="Check and apply the YAML schema files.")

_dir_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Directory of the schema files (default: the SCHEMAS_DIR setting).",
)
_lang_option = click.option(
    "--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True,
    help="Language of the error messages.",
)


def _report(failure: LoadFailed, lang: str) -> None:
    with force_locale(lang):
        for error in failure.errors:
            click.echo(str(error), err=True)
        click.echo(_("%(count)s error(s): nothing was applied.", count=len(failure.errors)), err=True)


def _removals_in_use(configuration: Configuration) -> list[SchemaError]:
    """Check the files against the register, when the database has one: a check may run before `flask db upgrade`."""
    try:
        return removals_in_use(configuration)
    except SQLAlchemyError as error:
        db.session.rollback()
        log.info("schemas checked without the register: %s", type(error).__name__)
        return []


@schemas_cli.command("check")
@_dir_option
@_lang_option
def check_command(directory: Path | None, lang: str) -> None:
    """Validate the schema files without applying them."""
    directory = directory or Path(current_app.config["SCHEMAS_DIR"])
    try:
        configuration = load_directory(directory)
        in_use = _removals_in_use(configuration)
        if in_use:
            raise LoadFailed(in_use)
    except LoadFailed as failure:
        _report(failure, lang)
        sys.exit(1)
    with force_locale(lang):
        click.echo(
            _(
                "Schema files are valid: %(departments)s departments, %(types)s mail types, "
                "%(roles)s roles, %(baskets)s baskets.",
                departments=len(configuration.departments), types=len(configuration.mail_types),
                roles=len(configuration.roles), baskets=len(configuration.baskets),
            )
        )


@schemas_cli.command("apply")
@_dir_option
@_lang_option
@click.option("--comment", default=None, help="Note stored with the new version.")
@click.option("--by", "username", default=None, help="Login of the administrator applying the files, stored with the version.")
def apply_command(directory: Path | None, lang: str, comment: str | None, username: str | None) -> None:
    """Validate the schema files and apply them as a new numbered version."""
    directory = directory or Path(current_app.config["SCHEMAS_DIR"])
    actor_id = None
    if username is not None:
        user = current_app.appbuilder.sm.find_user(username=username)
        if user is None:
            with force_locale(lang):
                click.echo(_("No account has the login %(login)s: nothing was applied.", login=username), err=True)
            sys.exit(1)
        actor_id = user.id
    try:
        result = apply_directory(directory, actor_id=actor_id, comment=comment)
    except LoadFailed as failure:
        _report(failure, lang)
        sys.exit(1)
    # Flask-AppBuilder's own screens: their permissions go to the administrator
    # role, which exists now.  Run here, once per deploy, never at each start.
    current_app.appbuilder.add_permissions(update_perms=True)
    with force_locale(lang):
        if result.changed:
            click.echo(_("Schema version %(number)s applied.", number=result.version))
        else:
            click.echo(_("No change: schema version %(number)s is already applied.", number=result.version))

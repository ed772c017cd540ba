"""`flask routing test FILE.yaml`: run the routing rules on sample mails, register nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale

from app.configuration.loader import LoadFailed, load_directory
from app.routing.samples import SamplesInvalid, mismatches, parse_samples, summarise

routing_cli = AppGroup("routing", help="Try the routing rules of the schema files.")


@routing_cli.command("test")
@click.argument("samples_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Directory of the schema files whose rules are tried (default: the SCHEMAS_DIR setting).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per sample instead of text.")
def test_command(samples_file: Path, directory: Path | None, as_json: bool) -> None:
    """Route each sample mail of SAMPLES_FILE and print the outcome with the trace of the rules.

    Exits with status 1 when the schema files are invalid or when a sample's
    outcome differs from its `expect` block.
    """
    directory = directory or Path(current_app.config["SCHEMAS_DIR"])
    try:
        configuration = load_directory(directory)
    except LoadFailed as failure:
        with force_locale("en"):
            for error in failure.errors:
                click.echo(str(error), err=True)
        sys.exit(1)
    try:
        samples = parse_samples(samples_file.read_text(encoding="utf-8"))
    except SamplesInvalid as exc:
        click.echo(f"{samples_file}: {exc}", err=True)
        sys.exit(1)

    failed = 0
    for sample in samples:
        summary = summarise(configuration, sample.mail)
        problems = mismatches(sample.expect, summary) if sample.expect else []
        failed += bool(problems)
        if as_json:
            click.echo(json.dumps({"name": sample.name, **summary.as_dict(), "trace": summary.outcome.trace(),
                                   "mismatches": problems}, ensure_ascii=False, default=str))
            continue
        click.echo(f"{sample.name}: {'MISMATCH' if problems else 'ok'}")
        click.echo(f"  department {summary.department or '-'}, assignee {summary.assignee or '-'}, "
                   f"priority {summary.priority}")
        click.echo(f"  copies users {', '.join(summary.copy_users) or '-'}; "
                   f"departments {', '.join(summary.copy_departments) or '-'}")
        for result in summary.outcome.results:
            checks = ", ".join(
                f"{check.condition}={check.value!r}{'' if check.passed else ' (no)'}" for check in result.checks
            )
            mark = "fired" if result.matched else "no"
            click.echo(f"  [{mark}] {result.rule_set}/{result.rule}: {checks or 'no condition'}")
        for problem in problems:
            click.echo(f"  ! {problem}")
    click.echo(f"{len(samples)} sample(s), {failed} mismatch(es).")
    if failed:
        sys.exit(1)

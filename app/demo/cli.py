"""`flask demo users` and `flask demo load`: the demo prefecture's agents and mail."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.attachments.operations import Upload
from app.configuration.operations import current_configuration
from app.correspondents.operations import CorrespondentInput
from app.demo.generator import iter_mails
from app.demo.letters import render_letter_pdf
from app.demo.processing import process_demo_mail
from app.demo.users import DEMO_PASSWORD, DEMO_USERS
from app.extensions import db
from app.mail.operations import PARIS, Registration, register_mail
from app.organisation.context import UserContext, build_user_context
from app.organisation.operations import ensure_user

log = logging.getLogger(__name__)

demo_cli = AppGroup("demo", help="Demo prefecture: agents and generated mail.")

# Relative weights of the demo mail types; incoming mail dominates, as in a prefecture.
TYPE_WEIGHTS = {
    "residence_permit_request": 30,
    "naturalisation_request": 6,
    "parliamentary_letter": 5,
    "grant_request": 8,
    "public_complaint": 10,
    "administrative_document_request": 5,
    "event_authorisation_request": 6,
    "outgoing_reply": 15,
    "outgoing_convocation": 4,
    "internal_memo": 8,
    "internal_note_to_prefect": 3,
}


def create_demo_users() -> dict[str, int]:
    ids = {}
    for user in DEMO_USERS:
        ids[user.username] = ensure_user(
            user.username, user.first_name, user.last_name, user.email, list(user.roles),
            user.department, DEMO_PASSWORD, user.secondary_departments, user.is_head,
        )
    return ids


@demo_cli.command("users")
def users_command() -> None:
    """Create the demo agents and print their logins."""
    create_demo_users()
    print_logins()


def print_logins() -> None:
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for user in DEMO_USERS:
        click.echo(f"  {user.username:<20} {user.first_name} {user.last_name} — {', '.join(user.roles)} — {user.department}")


def _correspondent_input(data: dict[str, Any] | None, known: dict[int, int]) -> CorrespondentInput | None:
    if data is None:
        return None
    existing = known.get(id(data))
    if existing is not None:
        return CorrespondentInput(id=existing)
    return CorrespondentInput(
        kind=data.get("kind") or "person",
        civility=data.get("civility"),
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        organisation=data.get("organisation"),
        email=data.get("email"),
        phone=data.get("phone"),
        address=data.get("address"),
        postcode=data.get("postcode"),
        city=data.get("city"),
        confirm_new=True,
    )


def _complete_required_fields(spec: Any, values: dict[str, Any], arrival: date) -> dict[str, Any]:
    """Fill required fields the generator does not know, so every demo mail is valid."""
    completed = dict(values)
    for field_spec in spec.fields:
        if not field_spec.required or completed.get(field_spec.id) not in (None, ""):
            continue
        if field_spec.type == "date":
            completed[field_spec.id] = arrival + timedelta(days=14)
        elif field_spec.type == "choice":
            completed[field_spec.id] = field_spec.choices[0].value
        elif field_spec.type in ("integer", "decimal"):
            completed[field_spec.id] = field_spec.min or 0
        else:
            completed[field_spec.id] = "Non renseigné"
    return completed


class _Actors:
    """The registering agents of demo mail: the mail room for incoming, agents for the rest."""

    def __init__(self, ids: dict[str, int]):
        users = {row.username: row for row in DEMO_USERS}
        self.contexts: dict[str, UserContext] = {}
        from flask_appbuilder.security.sqla.models import User

        for username, user_id in ids.items():
            self.contexts[username] = build_user_context(db.session.get(User, user_id))
        self.agents = [name for name, row in users.items() if "agent" in row.roles or "manager" in row.roles]
        self.department_of = {name: users[name].department for name in users}
        self.turn = 0

    def pick(self, category: str) -> tuple[UserContext, str | None]:
        if category == "incoming":
            return self.contexts["courrier"], None
        self.turn += 1
        name = self.agents[self.turn % len(self.agents)]
        return self.contexts[name], self.department_of[name]


def load_demo_mail(count: int, seed: int, with_letters: bool, today: date | None = None) -> int:
    """Register ``count`` generated mails through the registration operation; return how many."""
    configuration = current_configuration()
    weights = {key: value for key, value in TYPE_WEIGHTS.items() if key in configuration.mail_types}
    actors = _Actors(create_demo_users())
    known: dict[int, int] = {}
    registered = 0
    # No demo moment may come after the load itself, even for mail arriving today.
    started = datetime.now(PARIS)
    today = today or started.date()
    mail_ids: list[int] = []
    mails = iter_mails(seed, count, today, weights)
    with click.progressbar(mails, length=count, label="Registering demo mail") as progress:
        for generated in progress:
            actor, department = actors.pick(generated["category"])
            correspondent = generated.get("correspondent")
            uploads = []
            if with_letters and generated["channel"] in ("post", "email", "web"):
                pdf = render_letter_pdf(generated, correspondent)
                uploads.append(Upload(io.BytesIO(pdf), f"courrier-{registered + 1:06d}.pdf", kind="letter"))
            registration = Registration(
                mail_type=generated["mail_type_id"],
                subject=generated["subject"],
                arrival_date=generated["arrival_date"],
                letter_date=generated["letter_date"],
                channel=generated["channel"],
                priority=generated["priority"],
                # Confidential mail needs an assignee; the demo keeps it simple.
                confidential=False,
                handling_department=department,
                fields=_complete_required_fields(
                    configuration.mail_types[generated["mail_type_id"]], generated["fields"], generated["arrival_date"]
                ),
                correspondent=_correspondent_input(correspondent, known),
                uploads=uploads,
            )
            noon = min(datetime.combine(generated["arrival_date"], time(12, 0), tzinfo=PARIS), started)
            mail = register_mail(actor, registration, now=noon)
            mail_ids.append(mail.id)
            if correspondent is not None and id(correspondent) not in known:
                link = mail.correspondents[0]
                known[id(correspondent)] = link.correspondent_id
            registered += 1
    # Agents with the narrowest departments first, so that each mail goes to the agent of its office.
    processors = sorted(
        (context for context in actors.contexts.values() if context.can("process") and not context.can("read_all")),
        key=lambda context: len(context.scope_department_ids),
    )
    closed = process_demo_mail(processors, actors.contexts["admin"], mail_ids, today, seed, latest=started)
    click.echo(f"{closed} of them processed and closed, as agents would have on the days since their arrival.")
    return registered


@demo_cli.command("load")
@click.option("--mails", "count", type=click.IntRange(0, 2_000_000), default=200, show_default=True,
              help="Number of mails to generate and register.")
@click.option("--seed", type=int, default=2026, show_default=True, help="Random seed of the generator.")
@click.option("--letters/--no-letters", default=True, show_default=True,
              help="Attach a generated PDF letter to mail received by post, e-mail or web form.")
def load_command(count: int, seed: int, letters: bool) -> None:
    """Create the demo agents and register generated mail through the registration operation."""
    from app.mail.models import Mail

    already = db.session.execute(select(Mail.id).limit(1)).first()
    if already is not None and count:
        click.echo("The register already holds mail: demo mail is added after it.")
    registered = load_demo_mail(count, seed, letters)
    click.echo(f"{registered} demo mails registered.")
    print_logins()

"""Notifications: create them, mark them read, store preferences, build daily digests.

``notify`` is the one entry point for every event. It writes in the caller's
transaction and never commits, so a notification and its queued e-mail exist
exactly when the change that caused them does. The scheduler sends the queued
e-mail afterwards (``app.notifications.mail.deliver_pending``).
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, bindparam, func, insert, select, update

from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.core.db import InsertBatch, run_in_write_transaction
from app.core.errors import ValidationFailed
from app.core.types import utcnow
from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import can_see
from app.notifications.models import EMAIL_MODES, LANGUAGES, EmailMessage, Notification, UserPreference
from app.notifications.rendering import NotificationFacts, RenderedEmail, render_digest, render_single
from app.organisation.context import UserContext, build_user_context

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")

EVENTS = (
    "mail_assigned",
    "copy_received",
    "opinion_requested",
    "opinion_given",
    "reminder_due",
    "mail_late",
    "delegation_started",
    "signature_requested",
    "signature_returned",
    "document_signed",
)


@dataclass(frozen=True)
class Preferences:
    language: str = "fr"
    email_mode: str = "immediate"
    muted_events: tuple[str, ...] = ()

    def wants_email(self, event: str) -> bool:
        return self.email_mode != "off" and event not in self.muted_events


def preferences_of(user_ids: Iterable[int]) -> dict[int, Preferences]:
    """Return the preferences of each user, with the defaults for users who never set them."""
    ids = list(user_ids)
    stored = {
        row.user_id: Preferences(row.language, row.email_mode, tuple(row.muted_events or ()))
        for row in db.session.execute(select(UserPreference).where(UserPreference.user_id.in_(ids))).scalars()
    } if ids else {}
    return {user_id: stored.get(user_id, Preferences()) for user_id in ids}


def mail_link(mail_id: int | None) -> str:
    if mail_id is None:
        return ""
    return f"{str(current_app.config['PUBLIC_BASE_URL']).rstrip('/')}/mail/{mail_id}"


def display_name(user: Any) -> str:
    if user is None:
        return ""
    return f"{user.first_name or ''} {user.last_name or ''}".strip() or str(user.username)


def facts_for(
    notification: Notification, language: str, configuration: Configuration | None = None,
    actor_name: str | None = None, viewer: UserContext | None = None,
) -> NotificationFacts:
    """Gather what the texts of ``notification`` mention, in ``language``, from ``configuration`` or the current one.

    ``actor_name`` spares reading the actor's user row when the caller has the name.
    With ``viewer``, a mail the viewer may no longer see is named by neither its number, its
    subject nor its current due date: only the kind of event and its author remain.
    """
    mail = notification.mail
    actor = actor_name if actor_name is not None else display_name(notification.actor)
    if mail is not None and viewer is not None and not can_see(viewer, mail):
        # The kind of a signature request names the event ("visa demandé", "signature demandée").
        kind = {"kind": notification.params["kind"]} if "kind" in (notification.params or {}) else {}
        return NotificationFacts(event=notification.event, actor_name=actor, params=kind, hidden=True)
    return _facts(notification.event, mail, notification.mail_id, notification.params, language, configuration, actor)


def _facts(
    event: str, mail: Mail | None, mail_id: int | None, params: dict[str, Any], language: str,
    configuration: Configuration | None, actor_name: str,
) -> NotificationFacts:
    type_label = ""
    if mail is not None:
        spec = (configuration or current_configuration()).mail_types.get(mail.mail_type)
        type_label = spec.labels.get(language) if spec else mail.mail_type
    due = params.get("due_date") or (mail.due_date.isoformat() if mail and mail.due_date else None)
    return NotificationFacts(
        event=event,
        chrono=mail.chrono if mail else "",
        mail_subject=mail.subject if mail else "",
        mail_type=type_label,
        due_date=date.fromisoformat(due) if due else None,
        actor_name=actor_name,
        link=mail_link(mail_id),
        params=dict(params),
    )


def _email_values(user: Any, language: str, rendered: RenderedEmail, now: datetime) -> dict[str, Any]:
    """Return the column values of a pending e-mail to ``user``, with a new Message-ID."""
    domain = str(current_app.config["MAIL_SENDER"]).rsplit("@", 1)[-1].strip("> ") or "localhost"
    return {
        "user_id": user.id,
        "to_address": user.email,
        "language": language,
        "subject": rendered.subject,
        "body_text": rendered.text,
        "body_html": rendered.html,
        "message_id": f"<{now:%Y%m%d%H%M%S}.{secrets.token_hex(8)}@{domain}>",
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _queue_email(user: Any, language: str, rendered: RenderedEmail, now: datetime) -> EmailMessage:
    message = EmailMessage(**_email_values(user, language, rendered, now))
    db.session.add(message)
    return message


@dataclass(frozen=True)
class Recipient:
    """The facts of an active user that notify() needs, kept apart from the session."""

    id: int
    username: str
    first_name: str | None
    last_name: str | None
    email: str | None



@functools.cache
def _users_with_preferences() -> Select[Any]:
    """Return the query of the active users of ``user_ids`` with their preferences.

    The query is built once, because notify() runs in every registration.
    """
    return (
        select(
            User.id, User.username, User.first_name, User.last_name, User.email,
            UserPreference.user_id.label("preference_user_id"), UserPreference.language,
            UserPreference.email_mode, UserPreference.muted_events,
        )
        .outerjoin(UserPreference, UserPreference.user_id == User.id)
        .where(User.id.in_(bindparam("user_ids", expanding=True)), User.active.is_(True))
    )


class NotificationCache:
    """Active users, their preferences and visibility contexts, and the configuration, read once for many notify() calls.

    A job that notifies many users, such as the reminder sweep, passes one
    cache to every notify() call of its run and preloads the users of a batch
    with ``load``. The cache stores plain values, so it stays valid across the
    run's transactions but does not see changes made during the run.
    Without one, notify() reads the users at each call.
    """

    def __init__(self, configuration: Configuration | None = None) -> None:
        self._configuration = configuration
        # None marks a user who is inactive or does not exist.
        self._recipients: dict[int, Recipient | None] = {}
        self._preferences: dict[int, Preferences] = {}
        self._contexts: dict[int, UserContext] = {}

    def load(self, user_ids: Iterable[int]) -> None:
        """Read the users of ``user_ids`` not yet cached, with their preferences, in one query."""
        missing = [user_id for user_id in dict.fromkeys(user_ids) if user_id not in self._recipients]
        if not missing:
            return
        # No autoflush: users and preferences do not depend on the caller's pending rows, and
        # the caller's transaction flushes those once at its end instead of once more here.
        with db.session.no_autoflush:
            rows = db.session.execute(_users_with_preferences(), {"user_ids": missing}).all()
        found = {row.id: Recipient(row.id, row.username, row.first_name, row.last_name, row.email) for row in rows}
        for user_id in missing:
            self._recipients[user_id] = found.get(user_id)
        for row in rows:
            # Users who never saved their preferences get the defaults.
            self._preferences[row.id] = (
                Preferences(row.language, row.email_mode, tuple(row.muted_events or ()))
                if row.preference_user_id is not None else Preferences()
            )

    def active(self, user_ids: list[int]) -> list[Recipient]:
        """Return the active users among ``user_ids``, in that order."""
        self.load(user_ids)
        return [recipient for user_id in user_ids if (recipient := self._recipients[user_id]) is not None]

    def preferences(self, user_id: int) -> Preferences:
        return self._preferences[user_id]

    @property
    def configuration(self) -> Configuration:
        if self._configuration is None:
            self._configuration = current_configuration()
        return self._configuration

    def context(self, recipient: Recipient) -> UserContext:
        """Return the user's visibility context, built at the first call."""
        context = self._contexts.get(recipient.id)
        if context is None:
            context = self._contexts[recipient.id] = build_user_context(recipient)
        return context


def _visible_recipients(mail: Mail | None, recipients: list[Recipient], cache: NotificationCache) -> list[Recipient]:
    """Keep the users allowed to see ``mail``: a notification must not reveal a mail.

    The mail's assignee and the agent who registered it see it by the
    visibility rule whatever their rights, so their context is not built.
    """
    if mail is None:
        return recipients
    personal = (mail.assignee_id, mail.created_by_id)
    return [
        recipient for recipient in recipients
        if recipient.id in personal or can_see(cache.context(recipient), mail)
    ]


@dataclass
class _Planned:
    """One notification that notify() decided to write: its column values and those of its e-mail, if any."""

    values: dict[str, Any]
    email: dict[str, Any] | None


def _plan_notifications(
    event: str,
    mail: Mail | None,
    recipients: Iterable[int | None],
    actor: UserContext | None,
    params: dict[str, Any] | None,
    now: datetime | None,
    cache: NotificationCache | None,
) -> list[_Planned]:
    """Choose the recipients of ``event`` and render their e-mail without writing anything. notify() states the rules."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; expected one of {', '.join(EVENTS)}")
    now = now or utcnow()
    actor_id = actor.user_id if actor is not None else None
    candidates = list(dict.fromkeys(user_id for user_id in recipients if user_id is not None and user_id != actor_id))
    if not candidates:
        return []

    cache = cache if cache is not None else NotificationCache()
    visible = _visible_recipients(mail, cache.active(candidates), cache)
    if not visible:
        return []
    # The texts read the mail from this reference, which may not be flushed yet, and the
    # actor's name from their context.
    actor_name = actor.display_name if actor is not None else ""
    mail_id = mail.id if mail is not None else None

    planned = []
    for recipient in visible:
        preference = cache.preferences(recipient.id)
        notification_params = dict(params or {})
        values: dict[str, Any] = {
            "user_id": recipient.id,
            "mail_id": mail_id,
            "event": event,
            "actor_id": actor_id,
            "params": notification_params,
            "created_at": now,
            "read_at": None,
            "email_state": "none",
        }
        email = None
        if recipient.email and preference.wants_email(event):
            if preference.email_mode == "digest":
                values["email_state"] = "digest"
            else:
                facts = _facts(event, mail, mail_id, notification_params, preference.language, cache.configuration,
                               actor_name)
                rendered = render_single(preference.language, facts, display_name(recipient))
                email = _email_values(recipient, preference.language, rendered, now)
                values["email_state"] = "queued"
        planned.append(_Planned(values, email))
    return planned


def notify(
    event: str,
    mail: Mail | None,
    recipients: Iterable[int | None],
    actor: UserContext | None = None,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
    cache: NotificationCache | None = None,
) -> list[Notification]:
    """Notify ``recipients`` (user ids) of ``event`` on ``mail``, in the caller's transaction.

    ``actor`` None is the system actor. The actor is never notified of their
    own action, inactive users and users who may not see the mail are skipped,
    and each recipient is notified once. Each notification is shown in the
    portal and, as the recipient's preferences say, queued as an e-mail in
    their language or kept for their daily digest. ``cache`` reuses the
    users read by earlier calls of the same job. Returns the notifications
    created, not yet flushed, so their ids are set when the caller's
    transaction flushes. Raises ValueError for an unknown event.
    """
    created = []
    for planned in _plan_notifications(event, mail, recipients, actor, params, now, cache):
        notification = Notification(**planned.values, mail=mail)
        db.session.add(notification)
        if planned.email is not None:
            db.session.add(EmailMessage(**planned.email))
        created.append(notification)
    return created


@functools.cache
def _insert_statements() -> tuple[Any, Any]:
    return insert(Notification.__table__), insert(EmailMessage.__table__)


def insert_notifications(
    event: str,
    mail: Mail | None,
    recipients: Iterable[int | None],
    actor: UserContext | None = None,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
    cache: NotificationCache | None = None,
    batch: InsertBatch | None = None,
) -> int:
    """Write the rows notify() writes, with one INSERT statement per table or by ``batch``; return the number of notifications.

    For callers that do not need the Notification objects back, such as
    registration: the rows skip the session's unit of work, so ``mail`` must
    already be flushed, or be inserted by the same ``batch``.
    """
    planned = _plan_notifications(event, mail, recipients, actor, params, now, cache)
    if not planned:
        return 0
    emails = [item.email for item in planned if item.email is not None]
    if batch is not None:
        batch.add(Notification.__table__, [item.values for item in planned])
        batch.add(EmailMessage.__table__, emails)
        return len(planned)
    insert_notification, insert_email = _insert_statements()
    db.session.execute(insert_notification, [item.values for item in planned])
    if emails:
        db.session.execute(insert_email, emails)
    return len(planned)


# --- Reading and marking -----------------------------------------------------------


@functools.cache
def _unread_count_statement() -> Select[Any]:
    """Build the count of the unread notifications of user ``:user_id``.

    It is built once per process, because every portal page runs it.
    """
    return select(func.count()).select_from(Notification).where(
        Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None)
    )


def unread_count(user_id: int) -> int:
    return int(db.session.execute(_unread_count_statement(), {"user_id": user_id}).scalar_one())


def notifications_page(user_id: int, page: int, size: int) -> tuple[list[Notification], int]:
    total = int(
        db.session.execute(select(func.count()).select_from(Notification).where(Notification.user_id == user_id)).scalar_one()
    )
    rows = db.session.execute(
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .offset((max(page, 1) - 1) * size)
        .limit(size)
    ).scalars()
    return list(rows), total


def mark_read(user: UserContext, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all of them when ``notification_ids`` is None); return how many."""
    ids = None if notification_ids is None else list(notification_ids)

    def change() -> int:
        statement = update(Notification).where(Notification.user_id == user.user_id, Notification.read_at.is_(None))
        if ids is not None:
            statement = statement.where(Notification.id.in_(ids))
        return db.session.execute(statement.values(read_at=utcnow())).rowcount or 0

    return run_in_write_transaction(change, f"mark notifications read for user {user.user_id}")


def save_preferences(user: UserContext, language: str, email_mode: str, muted_events: Iterable[str]) -> None:
    """Store the user's language for e-mail, e-mail mode and events kept out of e-mail."""
    muted = sorted(set(muted_events))
    errors: dict[str, list[str]] = {}
    if language not in LANGUAGES:
        errors["language"] = [f"invalid language {language!r}"]
    if email_mode not in EMAIL_MODES:
        errors["email_mode"] = [f"invalid e-mail mode {email_mode!r}"]
    unknown = [event for event in muted if event not in EVENTS]
    if unknown:
        errors["muted_events"] = [f"unknown event {unknown[0]!r}"]
    if errors:
        raise ValidationFailed(errors)

    def change() -> None:
        row = db.session.get(UserPreference, user.user_id)
        if row is None:
            row = UserPreference(user_id=user.user_id)
            db.session.add(row)
        row.language = language
        row.email_mode = email_mode
        row.muted_events = muted
        row.updated_at = utcnow()

    run_in_write_transaction(change, f"save notification preferences of user {user.user_id}")
    log.info("notification preferences of user %s saved: %s, %s", user.user_id, language, email_mode)


# --- Daily digest --------------------------------------------------------------------


def send_digests(now: datetime | None = None) -> dict[str, int]:
    """Queue one digest e-mail per user who has notifications waiting for it.

    Each user's digest is built in its own transaction that moves exactly the
    notifications it lists from "digest" to "digested", so running the job
    twice, or in two processes, lists each notification once.
    """
    now = now or utcnow()
    user_ids = list(
        db.session.execute(
            select(Notification.user_id).where(Notification.email_state == "digest").distinct()
        ).scalars()
    )
    queued = 0
    for user_id in user_ids:
        try:
            if run_in_write_transaction(partial(_digest_for, user_id, now), f"digest for user {user_id}"):
                queued += 1
        except _DigestRace:
            log.info("digest for user %s skipped: another runner is building it", user_id)
    return {"digests": queued}


def _digest_for(user_id: int, now: datetime) -> bool:
    pending = list(
        db.session.execute(
            select(Notification)
            .where(Notification.user_id == user_id, Notification.email_state == "digest")
            .order_by(Notification.id)
        ).scalars()
    )
    user = db.session.get(User, user_id)
    if not pending or user is None:
        return False
    ids = [row.id for row in pending]
    moved = db.session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.email_state == "digest")
        .values(email_state="digested")
    ).rowcount
    if moved != len(ids):
        # Another runner took some of them: leave this user to the next pass.
        raise _DigestRace()
    if not user.email:
        return False

    language = preferences_of([user_id])[user_id].language
    viewer = build_user_context(user)
    items = [facts_for(row, language, viewer=viewer) for row in pending]
    rendered = render_digest(language, items, display_name(user), now.astimezone(PARIS).date())
    _queue_email(user, language, rendered, now)
    return True


class _DigestRace(Exception):
    """Another runner moved some of the user's notifications first."""

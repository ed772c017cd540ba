"""Notifications: creation, preferences, e-mail through a real SMTP server on loopback, digests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import can_see
from app.notifications.mail import FolderBackend, SmtpBackend, deliver_pending
from app.notifications.models import EmailMessage, Notification
from app.notifications.operations import (
    insert_notifications,
    mark_read,
    notify,
    save_preferences,
    send_digests,
    unread_count,
)
from app.notifications.rendering import NotificationFacts, sentence
from tests.conftest import csrf_token, user_context
from tests.integration.loopback_smtp import LoopbackSmtpServer
from tests.integration.test_reminders import register, user_id

HTML_SUBJECT = "<script>alert('x')</script> Demande <b>urgente</b>"


@pytest.fixture()
def smtp_server() -> Iterator[LoopbackSmtpServer]:
    server = LoopbackSmtpServer()
    server.start()
    yield server
    server.stop()


def smtp_backend(server: LoopbackSmtpServer) -> SmtpBackend:
    return SmtpBackend("127.0.0.1", server.port, "none", "", "", timeout=5)


def queued_for(username: str) -> list[EmailMessage]:
    return list(db.session.execute(select(EmailMessage).where(EmailMessage.user_id == user_id(username)).order_by(EmailMessage.id)).scalars())


def notifications_for(username: str) -> list[Notification]:
    return list(db.session.execute(select(Notification).where(Notification.user_id == user_id(username)).order_by(Notification.id)).scalars())


# --- Creating notifications -------------------------------------------------------------


def test_registration_notifies_assignee(app_context):
    mail = register()

    rows = notifications_for("sejour")
    assert [(row.event, row.mail_id, row.actor_id) for row in rows] == [("mail_assigned", mail.id, user_id("courrier"))]
    assert rows[0].email_state == "queued"
    assert notifications_for("courrier") == []


def test_assignment_email_in_french_by_default(app_context):
    mail = register()

    message = queued_for("sejour")[0]
    assert message.language == "fr"
    assert message.subject == f"[Estafette] {mail.chrono} — courrier qui vous est attribué"
    assert "Camille Durand vous a attribué le courrier" in message.body_text
    assert "21 décembre 2026" in message.body_text
    assert f"http://127.0.0.1:5000/mail/{mail.id}" in message.body_text


def test_email_in_recipient_language(app_context):
    save_preferences(user_context("sejour"), "en", "immediate", [])

    mail = register()

    message = queued_for("sejour")[0]
    assert message.language == "en"
    assert message.subject == f"[Estafette] {mail.chrono} — mail assigned to you"
    assert "Camille Durand assigned mail" in message.body_text
    assert "21 December 2026" in message.body_text
    assert "December 21" not in message.body_text


def test_notify_skips_actor_and_duplicates(app_context):
    mail = register()
    chief = user_context("chef.sejour")

    created = notify("opinion_requested", mail, [user_id("sejour"), chief.user_id, user_id("sejour")], actor=chief)
    db.session.commit()

    assert [row.user_id for row in created] == [user_id("sejour")]


def test_notify_skips_users_who_cannot_see_mail(app_context):
    mail = register(confidential=True)

    created = notify("copy_received", mail, [user_id("chef.sejour"), user_id("subventions"), user_id("sejour")])
    db.session.commit()

    # Confidential: only the assignee and the agent who registered it see it.
    assert [row.user_id for row in created] == [user_id("sejour")]


def test_insert_notifications_writes_notify_rows(app_context):
    save_preferences(user_context("chef.sejour"), "en", "digest", [])
    mail = register()
    clerk = user_context("courrier")
    recipients = [user_id("sejour"), user_id("chef.sejour"), clerk.user_id]
    now = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    params = {"due_date": "2026-12-18"}

    notify("opinion_requested", mail, recipients, actor=clerk, params=params, now=now)
    db.session.flush()
    inserted = insert_notifications("opinion_requested", mail, recipients, actor=clerk, params=params, now=now)
    db.session.commit()

    assert inserted == 2
    rows = db.session.execute(
        select(Notification).where(Notification.event == "opinion_requested").order_by(Notification.id)
    ).scalars().all()
    columns = ("user_id", "mail_id", "event", "actor_id", "params", "created_at", "read_at", "email_state")
    by_orm = [tuple(getattr(row, name) for name in columns) for row in rows[:2]]
    by_statement = [tuple(getattr(row, name) for name in columns) for row in rows[2:]]
    assert by_statement == by_orm
    assert [row.email_state for row in rows[:2]] == ["queued", "digest"]

    emails = [message for message in queued_for("sejour") if message.created_at == now]
    assert len(emails) == 2
    email_columns = ("user_id", "to_address", "language", "subject", "body_text", "body_html", "state", "attempts",
                     "next_attempt_at", "claimed_until", "last_error", "sent_at")
    assert [getattr(emails[1], name) for name in email_columns] == [getattr(emails[0], name) for name in email_columns]
    assert emails[1].message_id != emails[0].message_id


def test_notify_rejects_unknown_event(app_context):
    mail = register()

    with pytest.raises(ValueError):
        notify("mail_exploded", mail, [user_id("sejour")])


def test_muted_event_not_emailed(app_context):
    save_preferences(user_context("sejour"), "fr", "immediate", ["mail_assigned"])

    register()

    assert notifications_for("sejour")[0].email_state == "none"
    assert queued_for("sejour") == []


def test_html_subject_escaped_in_email(app_context):
    register(subject=HTML_SUBJECT)

    message = queued_for("sejour")[0]
    assert "<script>" not in message.body_html
    assert "&lt;script&gt;alert(" in message.body_html
    assert "<b>urgente</b>" in message.body_text


# --- Sending ---------------------------------------------------------------------------------


def test_smtp_delivery_sends_once(app_context, smtp_server):
    register()

    first = deliver_pending(backend=smtp_backend(smtp_server))
    second = deliver_pending(backend=smtp_backend(smtp_server))

    assert first.sent == 1
    assert second.sent == 0
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received["To"] == "sejour@demo-prefecture.gouv.fr"
    assert received.get_body(("plain",)).get_content().startswith("Bonjour Zoé N'Diaye,")


def test_smtp_down_then_up_sends_once(app_context):
    server = LoopbackSmtpServer()
    register()
    now = datetime.now(UTC)

    while_down = deliver_pending(now, backend=smtp_backend(server))
    message = queued_for("sejour")[0]
    db.session.refresh(message)
    state_while_down = (message.state, message.attempts)
    server.start()
    try:
        too_early = deliver_pending(now + timedelta(seconds=10), backend=smtp_backend(server))
        back_up = deliver_pending(now + timedelta(minutes=2), backend=smtp_backend(server))
        later = deliver_pending(now + timedelta(hours=2), backend=smtp_backend(server))
    finally:
        server.stop()

    assert while_down.retried == 1
    assert state_while_down == ("pending", 1)
    assert too_early.sent == 0
    assert back_up.sent == 1
    assert later.sent == 0
    assert len(server.messages) == 1


def test_rejected_recipient_fails_for_good(app_context, smtp_server, monkeypatch):
    import smtplib

    register()

    def refuse(self, mime):
        raise smtplib.SMTPRecipientsRefused({"sejour@demo-prefecture.gouv.fr": (550, b"no such user")})

    monkeypatch.setattr(smtplib.SMTP, "send_message", refuse)
    summary = deliver_pending(backend=smtp_backend(smtp_server))

    assert summary.failed == 1
    assert queued_for("sejour")[0].state == "failed"


def test_folder_backend_writes_eml(app_context, tmp_path: Path):
    register()

    deliver_pending(backend=FolderBackend(tmp_path))
    deliver_pending(backend=FolderBackend(tmp_path))

    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 1
    written = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert written["Subject"] == queued_for("sejour")[0].subject



def test_missing_attachment_does_not_stop_delivery(app_context, smtp_server):
    from app.notifications.models import EmailAttachment

    register(subject="Première demande")
    register(subject="Seconde demande")
    broken, intact = queued_for("sejour")
    broken.attachments.append(EmailAttachment(
        sha256="0" * 64, file_name="accusé.pdf", content_type="application/pdf",
    ))
    db.session.commit()

    summary = deliver_pending(backend=smtp_backend(smtp_server))

    db.session.refresh(broken)
    assert summary.sent == 1
    assert summary.retried == 1
    assert [message["Subject"] for message in smtp_server.messages] == [intact.subject]
    assert (broken.state, broken.attempts) == ("pending", 1)
    assert "accusé.pdf" in broken.last_error


# --- Digest -----------------------------------------------------------------------------------


def test_daily_digest_lists_notifications_once(app_context, smtp_server):
    save_preferences(user_context("sejour"), "fr", "digest", [])
    register(subject="Première demande")
    register(subject="Seconde demande")

    immediate = queued_for("sejour")
    first = send_digests()
    second = send_digests()
    deliver_pending(backend=smtp_backend(smtp_server))

    assert immediate == []
    assert first == {"digests": 1}
    assert second == {"digests": 0}
    assert len(smtp_server.messages) == 1
    body = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "Première demande" in body
    assert "Seconde demande" in body
    assert {row.email_state for row in notifications_for("sejour")} == {"digested"}


def _move_out_of_sight(mail: Mail, username: str) -> None:
    """Hand ``mail`` to another directorate, as a redirect would, so that ``username`` may no longer see it."""
    from app.organisation.models import Department

    other = db.session.execute(select(Department.id).where(Department.code == "DCPPAT")).scalar_one()
    db.session.execute(update(Mail).where(Mail.id == mail.id).values(
        handling_department_id=other, assignee_id=None, due_date=date(2027, 1, 15), subject="Sujet changé depuis",
    ))
    db.session.commit()
    db.session.expire_all()
    assert not can_see(user_context(username), db.session.get(Mail, mail.id))


def test_digest_hides_mail_out_of_sight(app_context, smtp_server):
    save_preferences(user_context("sejour"), "fr", "digest", [])
    mail = register(subject="Demande réorientée")
    _move_out_of_sight(mail, "sejour")

    send_digests()
    deliver_pending(backend=smtp_backend(smtp_server))

    body = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "ne vous est plus accessible" in body
    assert mail.chrono not in body
    assert "réorientée" not in body
    assert "Sujet changé" not in body
    assert f"/mail/{mail.id}" not in body


def test_opinion_request_names_deadline_and_question():
    facts = NotificationFacts(
        event="opinion_requested", chrono="PREF75/2026/A/000012", mail_subject="Demande de titre", actor_name="Zoé N'Diaye",
        due_date=date(2026, 12, 18), params={"comment": "Le demandeur réside-t-il dans le département ?"},
    )

    assert sentence("fr", facts) == (
        "Zoé N'Diaye vous demande votre avis sur le courrier PREF75/2026/A/000012 « Demande de titre », avant le "
        "18 décembre 2026. Question : « Le demandeur réside-t-il dans le département ? »"
    )
    assert sentence("en", facts).endswith(', by 18 December 2026. Question: "Le demandeur réside-t-il dans le département ?"')


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", "Signature demandée : ce courrier ne vous est plus accessible."),
    ("en", "Signature requested: you no longer have access to this mail."),
])
def test_hidden_mail_sentence(language, expected):
    facts = NotificationFacts(event="signature_requested", params={"kind": "signature"}, hidden=True)

    assert sentence(language, facts) == expected


# --- Pages ------------------------------------------------------------------------------------


def test_list_hides_mail_out_of_sight(app_context, client_as):
    mail = register(subject="Demande réorientée")
    chrono = mail.chrono
    _move_out_of_sight(mail, "sejour")

    page = client_as("sejour").get("/notifications/").get_data(as_text=True)

    assert "ne vous est plus accessible" in page
    assert chrono not in page
    assert "Sujet changé" not in page
    assert "15 janvier 2027" not in page
    assert f"/mail/{mail.id}" not in page


def test_bell_shows_unread_count(app_context, client_as):
    register()
    register(subject="Autre demande")

    page = client_as("sejour").get("/").get_data(as_text=True)

    assert 'id="unread-notifications">2</span>' in page


def test_list_escapes_subject_and_marks_read(app_context, client_as):
    mail = register(subject=HTML_SUBJECT)
    client = client_as("sejour")

    page = client.get("/notifications/").get_data(as_text=True)
    response = client.post("/notifications/read", data={"csrf_token": csrf_token(page)})

    assert "&lt;script&gt;" in page
    assert "<script>alert" not in page
    assert f"{mail.chrono}" in page
    assert response.status_code == 302
    assert unread_count(user_id("sejour")) == 0


def test_mark_read_only_own_notifications(app_context):
    register()
    notification = notifications_for("sejour")[0]

    changed = mark_read(user_context("chef.sejour"), [notification.id])

    assert changed == 0
    assert unread_count(user_id("sejour")) == 1


def test_preferences_page_saves(app_context, client_as):
    client = client_as("sejour")
    page = client.get("/notifications/preferences").get_data(as_text=True)

    response = client.post(
        "/notifications/preferences",
        data={"csrf_token": csrf_token(page), "language": "en", "email_mode": "digest", "muted_events": ["copy_received"]},
    )

    assert response.status_code == 302
    from app.notifications.operations import preferences_of

    saved = preferences_of([user_id("sejour")])[user_id("sejour")]
    assert (saved.language, saved.email_mode, saved.muted_events) == ("en", "digest", ("copy_received",))


def test_mail_link_opens_for_assignee(app_context, client_as):
    mail = register()

    response = client_as("sejour").get(f"/mail/{mail.id}")

    assert response.status_code == 200
    assert isinstance(db.session.get(Mail, mail.id), Mail)

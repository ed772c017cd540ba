"""Reminders: planning at registration, the sweep, due-date changes and legal dates."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select, update

from app.core.db import run_in_write_transaction
from app.core.errors import NotFound, PermissionDenied, ValidationFailed
from app.correspondents.operations import CorrespondentInput
from app.deadlines.calendar import get_calendar
from app.deadlines.operations import (
    change_due_date,
    declare_incomplete,
    implicit_decision_for,
    record_documents_received,
)
from app.distribution.operations import add_copies
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import Registration, register_mail
from app.notifications.models import Notification
from app.organisation.models import Department
from app.reminders.models import Reminder
from app.reminders.operations import due_time, resolve_recipients, send_due_reminders
from app.scheduler.models import ScheduledJob
from app.scheduler.runner import SchedulerRunner
from tests.conftest import csrf_token, user_context

METROPOLE = get_calendar("metropole")


def user_id(username: str) -> int:
    return db.session.execute(select(User.id).where(User.username == username)).scalar_one()


def register(mail_type: str = "residence_permit_request", arrival: date = date(2026, 11, 6), assignee: str | None = "sejour", **changes) -> Mail:
    fields = {
        "residence_permit_request": {"foreign_national_number": "0123456789", "permit_kind": "first_request"},
        "grant_request": {"amount_requested": "1200"},
        "event_authorisation_request": {"event_date": "20/12/2026"},
        "public_complaint": {},
    }[mail_type]
    values = dict(
        mail_type=mail_type,
        subject="Demande de premier titre de séjour",
        arrival_date=arrival,
        fields=fields,
        correspondent=CorrespondentInput(last_name="Œhmichen", first_name="Rachid", confirm_new=True),
        assignee_id=user_id(assignee) if assignee else None,
    )
    values.update(changes)
    return register_mail(user_context("courrier"), Registration(**values))


def reminders(mail_id: int) -> list[Reminder]:
    return list(db.session.execute(select(Reminder).where(Reminder.mail_id == mail_id).order_by(Reminder.remind_on, Reminder.id)).scalars())


def history_events(mail_id: int) -> list[str]:
    return list(db.session.execute(select(HistoryEntry.event).where(HistoryEntry.mail_id == mail_id).order_by(HistoryEntry.id)).scalars())


def after(day: date, minutes: int = 1) -> datetime:
    return due_time(day).astimezone(UTC) + timedelta(minutes=minutes)


# --- Planning at registration ---------------------------------------------------------


def test_registration_plans_steps_and_late_notice(app_context):
    mail = register()
    due = mail.due_date
    rows = reminders(mail.id)

    assert due == date(2026, 12, 21)
    assert [(row.kind, row.step_index) for row in rows] == [("step", 0), ("step", 1), ("late", None), ("step", 2), ("step", 3)]
    assert rows[0].remind_on == METROPOLE.add_working_days(due, -5)
    assert rows[1].remind_on == METROPOLE.add_working_days(due, -1)
    assert rows[2].remind_on == METROPOLE.add_working_days(due, 1)
    assert rows[3].remind_on == METROPOLE.add_working_days(due, 2)
    assert rows[4].remind_on == METROPOLE.add_working_days(due, 10)
    assert all(row.state == "pending" for row in rows)
    assert rows[0].due_at == due_time(rows[0].remind_on)


def test_type_without_plan_gets_late_notice_only(app_context):
    mail = register("event_authorisation_request", assignee="manifestations", subject="Manifestation", arrival=date(2026, 11, 30))

    assert [row.kind for row in reminders(mail.id)] == ["late"]


@pytest.mark.parametrize(
    ("arrival", "expected"),
    [
        (date(2026, 11, 6), date(2026, 11, 16)),  # Friday; 11 November is a holiday
        (date(2026, 11, 7), date(2026, 11, 16)),  # Saturday: no working day between it and Friday
        (date(2026, 11, 9), date(2026, 11, 17)),  # Monday
        (date(2026, 11, 11), date(2026, 11, 18)),  # the holiday itself
    ],
)
def test_registration_counts_working_days_after_receipt(app_context, arrival, expected):
    # Five working days; the day of receipt never counts, whatever kind of day it is.
    mail = register("event_authorisation_request", assignee="manifestations", subject="Manifestation", arrival=arrival)

    assert mail.due_date == expected


def test_past_steps_before_due_date_are_skipped(app_context):
    # Received 2 November with 5 working days: due 9 November 2026, before today.
    mail = register("event_authorisation_request", assignee="manifestations", subject="Manifestation", arrival=date(2026, 11, 2))

    rows = reminders(mail.id)
    assert [row.kind for row in rows] == ["late"]
    assert rows[0].remind_on == date(2026, 11, 10)


# --- The sweep ------------------------------------------------------------------------


def test_sweep_sends_due_reminder_once(app_context):
    mail = register()
    first = reminders(mail.id)[0]

    summary = send_due_reminders(after(first.remind_on))
    again = send_due_reminders(after(first.remind_on, minutes=5))

    assert summary.sent == 1
    assert again.sent == 0
    db.session.expire_all()
    assert db.session.get(Reminder, first.id).state == "sent"
    entries = db.session.execute(select(HistoryEntry).where(HistoryEntry.mail_id == mail.id, HistoryEntry.event == "reminder_sent")).scalars().all()
    assert len(entries) == 1
    assert entries[0].actor_id is None
    notified = db.session.execute(select(Notification.user_id, Notification.event).where(Notification.mail_id == mail.id, Notification.event == "reminder_due")).all()
    assert notified == [(user_id("sejour"), "reminder_due")]


def test_sweep_after_downtime_skips_reminders_before_due_date(app_context):
    mail = register()
    due = mail.due_date
    # The scheduler was stopped from before the first reminder until three working days past the due date.
    summary = send_due_reminders(after(METROPOLE.add_working_days(due, 3)))

    db.session.expire_all()
    rows = reminders(mail.id)
    before = [row for row in rows if row.kind == "step" and row.step_index in (0, 1)]
    assert [(row.state, row.outcome.get("reason")) for row in before] == [("cancelled", "due_date_passed")] * 2
    assert summary.sent == 2
    whens = db.session.execute(select(Notification.params).where(
        Notification.mail_id == mail.id, Notification.event.in_(["reminder_due", "mail_late"])
    )).scalars().all()
    # The late notice and the first step after the due date, to the assignee and the head of department.
    assert whens
    assert {params.get("when") for params in whens} == {"after"}


def test_sweep_on_due_date_skips_reminders_before_it(app_context):
    mail = register()

    summary = send_due_reminders(after(mail.due_date))

    db.session.expire_all()
    before = [row for row in reminders(mail.id) if row.kind == "step" and row.step_index in (0, 1)]
    assert [row.state for row in before] == ["cancelled", "cancelled"]
    assert summary.sent == 0


def test_sweep_before_due_time_sends_nothing(app_context):
    mail = register()
    first = reminders(mail.id)[0]

    summary = send_due_reminders(due_time(first.remind_on).astimezone(UTC) - timedelta(minutes=1))

    assert summary.sent == 0


def test_late_notice_goes_to_assignee(app_context):
    mail = register()
    late = next(row for row in reminders(mail.id) if row.kind == "late")

    send_due_reminders(after(late.remind_on))

    events = db.session.execute(select(Notification.user_id).where(Notification.mail_id == mail.id, Notification.event == "mail_late")).scalars().all()
    assert events == [user_id("sejour")]
    assert "late_notice_sent" in history_events(mail.id)


def test_closed_mail_reminder_cancelled(app_context):
    mail = register()
    first = reminders(mail.id)[0]
    db.session.execute(update(Mail).where(Mail.id == mail.id).values(status="closed"))
    db.session.commit()

    summary = send_due_reminders(after(first.remind_on))

    assert summary.cancelled == 1
    assert db.session.execute(select(Notification.id).where(Notification.event == "reminder_due")).first() is None


def test_repeating_step_plans_next_occurrence(app_context):
    mail = register()
    repeating = next(row for row in reminders(mail.id) if row.step_index == 2)
    send_due_reminders(after(repeating.remind_on))

    db.session.expire_all()
    rows = [row for row in reminders(mail.id) if row.step_index == 2]
    assert [(row.occurrence, row.state) for row in rows] == [(1, "sent"), (2, "pending")]
    assert rows[1].remind_on == METROPOLE.add_working_days(repeating.remind_on, 5)


def test_repetition_after_downtime_counts_from_today(app_context):
    mail = register()
    repeating = next(row for row in reminders(mail.id) if row.step_index == 2)
    late_day = METROPOLE.add_working_days(repeating.remind_on, 20)
    send_due_reminders(after(late_day))

    db.session.expire_all()
    rows = [row for row in reminders(mail.id) if row.step_index == 2]
    assert rows[-1].remind_on == METROPOLE.add_working_days(late_day, 5)


def test_recipients_department_head_and_director(app_context):
    mail = register()

    # DMI-SSE-BPT has no head: its parent DMI-SSE has one. The directorate DMI has none.
    assert resolve_recipients(mail, ["department_head"]) == [user_id("chef.sejour")]
    assert resolve_recipients(mail, ["assignee", "department_head"]) == [user_id("sejour"), user_id("chef.sejour")]
    assert resolve_recipients(mail, ["director"]) == [user_id("chef.sejour")]
    # Without copies, a step for copies falls back to the department head.
    assert resolve_recipients(mail, ["copies"]) == [user_id("chef.sejour")]


def _copy_to_users_and_cab(mail: Mail) -> None:
    """Copy the mail to two users and to the cabinet (CAB), as a redirect with copies would."""
    cab = db.session.execute(select(Department.id).where(Department.code == "CAB")).scalar_one()
    users = [user_id("subventions"), user_id("legalite")]
    run_in_write_transaction(lambda: add_copies(db.session.get(Mail, mail.id), users, [cab], None), "copy for the test")


def test_recipients_copies_users_and_members(app_context):
    mail = register()
    _copy_to_users_and_cab(mail)
    db.session.execute(update(User).where(User.username == "legalite").values(active=False))
    db.session.commit()
    try:
        recipients = resolve_recipients(mail, ["copies"])
    finally:
        # The demo users outlive this test.
        db.session.execute(update(User).where(User.username == "legalite").values(active=True))
        db.session.commit()

    # The member of CAB is a recipient. cabinet belongs to its sub-department CAB-BRE, which the
    # visibility rule does not show a copy sent to CAB. The inactive user in copy is left out.
    assert sorted(recipients) == sorted([user_id("subventions"), user_id("directeur.cabinet")])
    assert len(recipients) == len(set(recipients))
    assert resolve_recipients(mail, ["assignee", "copies"])[0] == user_id("sejour")


def test_sweep_sends_copies_step_to_copies(app_context):
    mail = register()
    _copy_to_users_and_cab(mail)
    first = reminders(mail.id)[0]
    db.session.execute(update(Reminder).where(Reminder.id == first.id).values(recipient_roles=["copies"]))
    db.session.commit()

    send_due_reminders(after(first.remind_on))

    notified = db.session.execute(select(Notification.user_id).where(Notification.event == "reminder_due")).scalars().all()
    assert sorted(notified) == sorted([user_id("subventions"), user_id("legalite"), user_id("directeur.cabinet")])


def test_unassigned_mail_reminds_department_head(app_context):
    mail = register()
    first = reminders(mail.id)[0]
    db.session.execute(update(Mail).where(Mail.id == mail.id).values(assignee_id=None))
    db.session.commit()

    send_due_reminders(after(first.remind_on))

    notified = db.session.execute(select(Notification.user_id).where(Notification.event == "reminder_due")).scalars().all()
    assert notified == [user_id("chef.sejour")]


# --- Due date changes -------------------------------------------------------------------


def test_due_date_change_recomputes_reminders(app_context):
    mail = register()
    agent = user_context("sejour")

    change_due_date(agent, mail.id, date(2027, 1, 29), "Attente de l'avis de la DDETS")

    db.session.expire_all()
    changed = db.session.get(Mail, mail.id)
    assert changed.due_date == date(2027, 1, 29)
    rows = reminders(mail.id)
    assert {row.due_date for row in rows} == {date(2027, 1, 29)}
    assert rows[0].remind_on == METROPOLE.add_working_days(date(2027, 1, 29), -5)
    entry = db.session.execute(select(HistoryEntry).where(HistoryEntry.mail_id == mail.id, HistoryEntry.event == "due_date_changed")).scalar_one()
    assert entry.details == {"previous": "2026-12-21", "new": "2027-01-29", "reason": "Attente de l'avis de la DDETS"}
    assert entry.actor_id == agent.user_id


def test_due_date_change_needs_reason(app_context):
    mail = register()

    with pytest.raises(ValidationFailed) as failure:
        change_due_date(user_context("sejour"), mail.id, date(2027, 1, 29), "   ")

    assert "reason" in failure.value.field_errors


def test_due_date_change_hidden_from_other_department(app_context):
    mail = register()

    with pytest.raises(NotFound):
        change_due_date(user_context("subventions"), mail.id, date(2027, 1, 29), "Pas mon service")


def test_due_date_change_refused_to_mail_room(app_context):
    # The mail room registered the mail, so it sees it, but it does not process mail.
    mail = register()

    with pytest.raises(PermissionDenied):
        change_due_date(user_context("courrier"), mail.id, date(2027, 1, 29), "Erreur de saisie")


def test_due_date_form_on_detail_page(app_context, client_as):
    mail = register()
    client = client_as("sejour")
    page = client.get(f"/mail/{mail.id}").get_data(as_text=True)

    response = client.post(
        f"/mail/{mail.id}/due-date",
        data={"csrf_token": csrf_token(page), "new_due_date": "15/01/2027", "reason": "Pièce complémentaire attendue"},
    )

    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Mail, mail.id).due_date == date(2027, 1, 15)
    detail = client.get(f"/mail/{mail.id}").get_data(as_text=True)
    assert "Pièce complémentaire attendue" in detail
    # The date set by hand is not described as the type's delay.
    assert 'id="due-date-by-hand"' in detail
    assert "jour d&#39;arrivée non compris" not in detail


def test_rejected_due_date_form_keeps_date(app_context, client_as):
    mail = register()
    client = client_as("sejour")
    page = client.get(f"/mail/{mail.id}").get_data(as_text=True)

    response = client.post(
        f"/mail/{mail.id}/due-date", data={"csrf_token": csrf_token(page), "new_due_date": "15/01/2027", "reason": ""},
    )
    again = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 400
    assert "<details class=\"deadline-forms\" open>" in again
    assert 'value="15/01/2027"' in again
    assert "Indiquez la nouvelle date limite de traitement et le motif." in again


def test_due_date_on_holiday_warned(app_context, client_as):
    mail = register()
    client = client_as("sejour")
    page = client.get(f"/mail/{mail.id}").get_data(as_text=True)

    client.post(
        f"/mail/{mail.id}/due-date",
        data={"csrf_token": csrf_token(page), "new_due_date": "25/12/2026", "reason": "Demande du préfet"},
    )
    detail = html.unescape(client.get(f"/mail/{mail.id}").get_data(as_text=True))

    assert "Le 25/12/2026 n'est pas un jour ouvré" in detail


# --- Legal dates --------------------------------------------------------------------------


def test_implicit_decision_shown_on_detail_page(app_context, client_as):
    mail = register()

    page = client_as("sejour").get(f"/mail/{mail.id}").get_data(as_text=True)

    # Silence means rejection after four months: received 6 November 2026 gives 6 March 2027.
    assert 'data-field="implicit_decision_date"' in page
    assert "6 mars 2027" in page


def test_incomplete_file_suspends_rejection_delay(app_context):
    mail = register()
    agent = user_context("sejour")
    spec_before = implicit_decision_for(mail, _spec(mail))

    record = declare_incomplete(agent, mail.id, ["Passeport", "Justificatif de domicile"], date(2026, 12, 20), date(2026, 11, 20))
    while_missing = implicit_decision_for(mail, _spec(mail))
    record_documents_received(agent, mail.id, record.id, date(2026, 11, 30))
    after_receipt = implicit_decision_for(mail, _spec(mail))

    assert spec_before.date == date(2027, 3, 6)
    # Suspended from the request to the deadline while missing: 30 days.
    assert while_missing.date == date(2027, 4, 5)
    # Suspended from 20 to 30 November once received: 10 days.
    assert after_receipt.date == date(2027, 3, 16)
    assert history_events(mail.id)[-2:] == ["marked_incomplete", "documents_received"]


def test_incomplete_file_restarts_acceptance_delay(app_context):
    mail = register("grant_request", assignee="subventions", subject="Subvention festival")
    agent = user_context("subventions")

    record = declare_incomplete(agent, mail.id, ["Budget prévisionnel"], date(2026, 12, 31), date(2026, 11, 20))
    while_missing = implicit_decision_for(mail, _spec(mail))
    record_documents_received(agent, mail.id, record.id, date(2026, 12, 2))
    after_receipt = implicit_decision_for(mail, _spec(mail))

    assert while_missing.date is None
    assert while_missing.awaiting_documents is True
    # Two months again in full from the receipt of the documents.
    assert after_receipt.date == date(2027, 2, 2)
    entry = db.session.execute(select(HistoryEntry).where(HistoryEntry.mail_id == mail.id, HistoryEntry.event == "documents_received")).scalar_one()
    assert entry.details["implicit_decision_date"] == "2027-02-02"


def test_incomplete_file_refused_without_regime(app_context):
    mail = register("public_complaint", assignee=None, subject="Réclamation", handling_department="SG")

    with pytest.raises(ValidationFailed):
        declare_incomplete(user_context("admin"), mail.id, ["Pièce"], date(2026, 12, 31))


def test_second_request_waits_for_first(app_context):
    mail = register()
    agent = user_context("sejour")
    declare_incomplete(agent, mail.id, ["Passeport"], date(2026, 12, 20), date(2026, 11, 20))

    with pytest.raises(ValidationFailed):
        declare_incomplete(agent, mail.id, ["Photo"], date(2026, 12, 20), date(2026, 11, 21))


def _spec(mail: Mail):
    from app.configuration.operations import current_configuration

    return current_configuration().mail_types[mail.mail_type]


# --- Catching up after downtime ------------------------------------------------------------


def test_reminders_sent_once_after_three_hours_down(app):
    with app.app_context():
        mails = [register(subject=f"Demande {number}") for number in range(3)]
        first_day = reminders(mails[0].id)[0].remind_on
        ids = [mail.id for mail in mails]
        nine = due_time(first_day).astimezone(UTC)

    before = SchedulerRunner(app, holder="before-outage").run_pass(nine - timedelta(minutes=1))
    # Stopped from 08:59 to 12:00: a new process starts and catches up.
    restarted = SchedulerRunner(app, holder="after-outage")
    catch_up = restarted.run_pass(nine + timedelta(hours=3))
    next_pass = restarted.run_pass(nine + timedelta(hours=3, minutes=1))

    assert before.ran["send_reminders"]["sent"] == 0
    assert catch_up.ran["send_reminders"]["sent"] == 3
    assert next_pass.ran["send_reminders"]["sent"] == 0
    with app.app_context():
        sent = db.session.execute(select(HistoryEntry.mail_id).where(HistoryEntry.event == "reminder_sent")).scalars().all()
        assert sorted(sent) == sorted(ids)
        state = db.session.get(ScheduledJob, "send_reminders")
        assert state.late_runs == 1
        # The pass at 08:59 set the next run to 09:00.
        assert state.last_late_by_seconds == 3 * 3600


def test_missed_digest_runs_once_on_restart(app):
    runner = SchedulerRunner(app, holder="digest")
    evening = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    runner.run_pass(evening)
    # Stopped over the 07:00 digest, back at 10:00 (Paris) the next day.
    morning = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

    first = runner.run_pass(morning)
    second = runner.run_pass(morning + timedelta(minutes=1))

    assert "queue_digests" in first.ran
    assert "queue_digests" not in second.ran
    with app.app_context():
        state = db.session.get(ScheduledJob, "queue_digests")
        assert state.total_runs == 1
        assert state.late_runs == 1
        assert state.next_run_at == datetime(2026, 12, 6, 6, 0, tzinfo=UTC)

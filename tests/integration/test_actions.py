"""Actions of the state machine: each operation, its refusals, concurrency and bulk runs."""

from __future__ import annotations

import html
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.actions.operations import MAIL_GONE_MESSAGE, ActionInput, ActionNotAllowed, perform_action, perform_bulk
from app.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, message_without_form
from app.correspondents.operations import CorrespondentInput
from app.distribution.models import COPY, OPINION, DistributionEntry, ReadMark
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from app.notifications.models import Notification
from app.organisation.models import Department
from tests.conftest import csrf_token, user_context


def _residence(permit_kind: str = "first_request", nationality: str | None = "Sénégalaise") -> int:
    fields = {"foreign_national_number": "0123456789", "permit_kind": permit_kind}
    if nationality:
        fields["nationality"] = nationality
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="residence_permit_request", subject="Demande de titre de séjour",
            arrival_date=today_in_paris() - timedelta(days=1), fields=fields,
            correspondent=CorrespondentInput(last_name="Diallo", first_name="Awa", confirm_new=True),
        ),
    )
    return mail.id


def _naturalisation(number: str | None, subject: str = "Demande de naturalisation") -> int:
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="naturalisation_request", subject=subject,
            arrival_date=today_in_paris() - timedelta(days=1),
            fields={"foreign_national_number": number} if number else {},
            correspondent=CorrespondentInput(last_name="Nguyen", first_name="Minh", confirm_new=True),
        ),
    )
    return mail.id


def _act(username: str, mail_id: int, action_id: str, **values: Any):
    return perform_action(user_context(username), mail_id, action_id, ActionInput(**values))


def _history(mail_id: int) -> list[HistoryEntry]:
    return list(db.session.execute(
        select(HistoryEntry).where(HistoryEntry.mail_id == mail_id).order_by(HistoryEntry.id)
    ).scalars())


def test_qualify_moves_to_in_progress(app_context):
    mail_id = _residence()
    result = _act("sejour", mail_id, "qualify")
    assert result.mail.status == "in_progress"
    entry = _history(mail_id)[-1]
    assert (entry.event, entry.details["from_status"], entry.details["to_status"]) == ("qualify", "new", "in_progress")


def test_assign_within_department_tree(app_context):
    mail_id = _residence("change_of_status")
    with pytest.raises(ValidationFailed):
        _act("chef.sejour", mail_id, "assign", assignee_id=user_context("naturalisation").user_id)
    result = _act("chef.sejour", mail_id, "assign", assignee_id=user_context("sejour").user_id)
    assert result.mail.assignee.username == "sejour"


def test_redirect_applies_target_model(app_context):
    mail_id = _residence()
    result = _act("sejour", mail_id, "redirect", department="DMI-SSE-BRT", comment="Il s'agit d'un renouvellement")
    assert result.mail.handling_department.code == "DMI-SSE-BRT"
    assert result.mail.assignee.username == "renouvellement"
    assert result.mail.status == "to_qualify"
    entry = _history(mail_id)[-1]
    assert entry.details["from_department"] == "DMI-SSE-BPT"
    assert entry.details["comment"] == "Il s'agit d'un renouvellement"
    notified = db.session.execute(
        select(Notification.user_id).where(Notification.mail_id == mail_id, Notification.event == "mail_assigned")
    ).scalars().all()
    assert user_context("renouvellement").user_id in notified


def test_agent_redirect_bounded_to_direction(app_context):
    mail_id = _residence()
    with pytest.raises(PermissionDenied):
        _act("sejour", mail_id, "redirect", department="CAB-BRE")
    assert db.session.get(Mail, mail_id).handling_department.code == "DMI-SSE-BPT"


def test_manager_redirects_anywhere(app_context):
    mail_id = _residence()
    result = _act("chef.sejour", mail_id, "redirect", department="CAB-BRE")
    assert result.mail.assignee.username == "cabinet"


def test_copy_grants_visibility_and_read_mark(app_context):
    mail_id = _residence()
    cabinet = user_context("cabinet")
    with pytest.raises(NotFound):
        _act("cabinet", mail_id, "mark_read")
    _act("sejour", mail_id, "copy", copy_user_ids=[cabinet.user_id])
    _act("cabinet", mail_id, "mark_read")
    marks = db.session.execute(select(ReadMark.user_id).where(ReadMark.mail_id == mail_id)).scalars().all()
    assert marks == [cabinet.user_id]
    with pytest.raises(ActionNotAllowed):
        _act("cabinet", mail_id, "mark_read")


def test_copy_cannot_close(app_context):
    mail_id = _residence()
    _act("sejour", mail_id, "copy", copy_user_ids=[user_context("cabinet").user_id])
    with pytest.raises(PermissionDenied):
        _act("cabinet", mail_id, "close")


def test_opinion_cycle_returns_to_in_progress(app_context):
    mail_id = _residence()
    _act("sejour", mail_id, "qualify")
    due = today_in_paris() + timedelta(days=7)
    asked = _act("sejour", mail_id, "ask_opinion", opinion_department="DMI-SN", opinion_due_date=due)
    assert asked.mail.status == "awaiting_opinion"
    with pytest.raises(PermissionDenied):
        _act("chef.sejour", mail_id, "give_opinion", comment="Avis favorable")
    with pytest.raises(ValidationFailed):
        _act("naturalisation", mail_id, "give_opinion")
    given = _act("naturalisation", mail_id, "give_opinion", comment="Avis favorable")
    assert given.mail.status == "in_progress"
    entry = db.session.execute(
        select(DistributionEntry).where(DistributionEntry.mail_id == mail_id, DistributionEntry.role == OPINION)
    ).scalar_one()
    assert (entry.answer, entry.due_date) == ("Avis favorable", due)
    assert entry.answered_by_id == user_context("naturalisation").user_id


def test_opinions_basket_shows_when_the_opinion_is_due(app, client_as):
    with app.app_context():
        mail_id = _residence()
        _act("sejour", mail_id, "qualify")
        due = today_in_paris() + timedelta(days=7)
        _act("sejour", mail_id, "ask_opinion", opinion_department="DMI-SN", opinion_due_date=due)
        mail_due = db.session.get(Mail, mail_id).due_date

    page = client_as("naturalisation").get("/mail/basket/opinions_to_give").get_data(as_text=True)

    heading = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert heading.index("Avis attendu le") < heading.index("Date limite")
    row = page.split(f'data-mail="{mail_id}"', 1)[1].split("</tr>", 1)[0]
    cells = [cell.split("<", 1)[0].strip() for cell in row.split("<td>")[1:]]
    assert cells[3] == due.strftime("%d/%m/%Y")
    assert cells[4] == mail_due.strftime("%d/%m/%Y")


def test_two_opinions_wait_for_both(app_context):
    mail_id = _residence()
    _act("sejour", mail_id, "ask_opinion", opinion_user_id=user_context("naturalisation").user_id)
    _act("sejour", mail_id, "ask_opinion", opinion_user_id=user_context("renouvellement").user_id)
    first = _act("naturalisation", mail_id, "give_opinion", comment="D'accord")
    assert first.mail.status == "awaiting_opinion"
    second = _act("renouvellement", mail_id, "give_opinion", comment="D'accord aussi")
    assert second.mail.status == "in_progress"


def test_opinion_deadline_in_past_rejected(app_context):
    mail_id = _residence()
    with pytest.raises(ValidationFailed):
        _act("sejour", mail_id, "ask_opinion", opinion_department="DMI-SN",
             opinion_due_date=today_in_paris() - timedelta(days=1))


def test_close_needs_required_fields(app_context):
    mail_id = _residence(nationality=None)
    with pytest.raises(ValidationFailed) as failure:
        _act("sejour", mail_id, "close")
    assert list(failure.value.field_errors) == ["field_nationality"]
    # The mail page shows the fields' messages alone, in one line: each names its field.
    assert message_without_form(failure.value) == "Nationalité : obligatoire pour la clôture."
    assert db.session.get(Mail, mail_id).status == "new"
    with pytest.raises(ValidationFailed) as invalid:
        _act("sejour", mail_id, "close", fields={"nationality": "Malienne", "foreign_national_number": "12AB"})
    assert invalid.value.field_errors == {"field_foreign_national_number": [
        "Numéro AGDREF de l'étranger : Le numéro AGDREF comporte exactement 10 chiffres.",
    ]}
    result = _act("sejour", mail_id, "close", fields={"nationality": "Malienne"})
    assert result.mail.status == "closed"
    assert result.mail.fields["nationality"] == "Malienne"
    assert result.mail.closed_at is not None


def test_close_without_follow_up_needs_comment(app_context):
    mail_id = _residence()
    with pytest.raises(ValidationFailed):
        _act("sejour", mail_id, "close_without_follow_up")
    result = _act("sejour", mail_id, "close_without_follow_up", comment="Doublon")
    assert result.mail.status == "closed_without_follow_up"


def test_reopen_clears_closing(app_context):
    mail_id = _residence()
    _act("sejour", mail_id, "close")
    with pytest.raises(ActionNotAllowed):
        _act("sejour", mail_id, "close")
    result = _act("sejour", mail_id, "reopen", comment="Pièce nouvelle reçue")
    assert result.mail.status == "in_progress"
    assert result.mail.closed_at is None


def test_closing_removes_pending_reminders_and_reopening_plans_them(app_context):
    from app.reminders.models import Reminder

    def pending(mail_id: int) -> int:
        return db.session.execute(
            select(func.count()).select_from(Reminder).where(Reminder.mail_id == mail_id, Reminder.state == "pending")
        ).scalar_one()

    mail_id = _residence()
    planned = pending(mail_id)
    assert planned > 0

    _act("sejour", mail_id, "close")
    assert pending(mail_id) == 0
    _act("sejour", mail_id, "reopen", comment="Pièce nouvelle reçue")
    assert pending(mail_id) == planned


def test_invisible_mail_is_not_found(app_context):
    mail_id = _residence()
    with pytest.raises(NotFound):
        _act("subventions", mail_id, "close")


def test_stale_version_on_invisible_mail_not_found(app_context):
    mail_id = _residence()
    for version in (0, 1, db.session.get(Mail, mail_id).row_version):
        with pytest.raises(NotFound):
            _act("subventions", mail_id, "close", expected_version=version)
    with pytest.raises(NotFound) as missing:
        _act("subventions", mail_id + 1000, "close", expected_version=1)
    assert missing.value.message == str(MAIL_GONE_MESSAGE)


def test_stale_version_refused_untouched(app_context):
    mail_id = _residence()
    version = db.session.get(Mail, mail_id).row_version
    _act("sejour", mail_id, "qualify", expected_version=version)
    with pytest.raises(Conflict):
        _act("chef.sejour", mail_id, "redirect", department="DMI-SN", expected_version=version)
    mail = db.session.get(Mail, mail_id)
    assert mail.handling_department.code == "DMI-SSE-BPT"
    assert [entry.event for entry in _history(mail_id)] == ["registered", "qualify"]


def _redirect_in_thread(app: Any, username: str, mail_id: int, department: str, version: int,
                        barrier: threading.Barrier) -> str:
    with app.app_context():
        user = user_context(username)
        barrier.wait()
        try:
            perform_action(user, mail_id, "redirect", ActionInput(department=department, expected_version=version))
        except Conflict as conflict:
            return f"conflict: {conflict.message}"
        except NotFound as gone:
            # The winner's redirect took the mail out of the loser's departments.
            return f"conflict: {gone.message}"
        finally:
            db.session.remove()
        return "done"


@pytest.mark.parametrize("round_number", range(3))
def test_concurrent_redirects_one_wins(app, round_number):
    with app.app_context():
        mail_id = _residence()
        version = db.session.get(Mail, mail_id).row_version
        db.session.remove()
    barrier = threading.Barrier(2)
    targets = {"sejour": "DMI-SSE-BRT", "chef.sejour": "DMI-SN"}
    with ThreadPoolExecutor(2) as pool:
        futures = {
            username: pool.submit(_redirect_in_thread, app, username, mail_id, department, version, barrier)
            for username, department in targets.items()
        }
        outcomes = {username: future.result() for username, future in futures.items()}

    winners = [username for username, outcome in outcomes.items() if outcome == "done"]
    losers = [outcome for outcome in outcomes.values() if outcome.startswith("conflict")]
    assert len(winners) == 1
    assert len(losers) == 1
    assert "reload" in losers[0].lower() or "recharg" in losers[0].lower()
    with app.app_context():
        mail = db.session.get(Mail, mail_id)
        assert mail.handling_department.code == targets[winners[0]]
        redirects = [entry for entry in _history(mail_id) if entry.event == "redirect"]
        assert len(redirects) == 1
        assert redirects[0].actor_id == user_context(winners[0]).user_id
        assert mail.row_version > version


def test_bulk_close_reports_each_failure(app_context):
    missing = {17, 101, 188}
    mail_ids = [_naturalisation(None if index in missing else f"{index:010d}") for index in range(200)]
    report = perform_bulk(user_context("naturalisation"), "close", mail_ids)

    assert len(report.succeeded) == 197
    assert sorted(failure.mail_id for failure in report.failed) == sorted(mail_ids[index] for index in missing)
    assert all("AGDREF" in failure.message for failure in report.failed)
    assert all(failure.chrono for failure in report.failed)
    statuses = dict(db.session.execute(select(Mail.status, func.count()).group_by(Mail.status)).all())
    assert statuses == {"closed": 197, "new": 3}


def test_bulk_refuses_non_bulk_action(app_context):
    mail_id = _residence()
    with pytest.raises(NotFound):
        perform_bulk(user_context("sejour"), "redirect", [mail_id])


def test_bulk_page_lists_failures(client_as, app):
    with app.app_context():
        good = [_naturalisation("0000000001"), _naturalisation("0000000002")]
        bad = _naturalisation(None)
    client = client_as("naturalisation")
    page = client.get("/mail/basket/to_process").get_data(as_text=True)
    response = client.post(
        "/mail/basket/to_process/bulk",
        data={"csrf_token": csrf_token(page), "action_id": "close", "mail_ids": [str(item) for item in good + [bad]]},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<tr data-mail="{bad}">' in html
    assert f'data-mail="{good[0]}"' not in html.split('id="bulk-failures"', 1)[1].split("</table>", 1)[0]


def test_bulk_action_not_offered_is_forbidden(client_as, app):
    with app.app_context():
        mail_id = _naturalisation("0000000001")
    client = client_as("naturalisation")
    page = client.get("/mail/basket/to_process").get_data(as_text=True)
    response = client.post(
        "/mail/basket/to_process/bulk",
        data={"csrf_token": csrf_token(page), "action_id": "reopen", "mail_ids": [str(mail_id)]},
    )
    assert response.status_code == 403


def test_detail_page_offers_allowed_actions(client_as, app):
    with app.app_context():
        mail_id = _residence()
    html = client_as("sejour").get(f"/mail/{mail_id}").get_data(as_text=True)
    for action_id in ("qualify", "redirect", "copy", "ask_opinion", "close"):
        assert f'id="action-{action_id}"' in html, action_id
    assert 'id="action-reopen"' not in html
    assert 'id="action-give_opinion"' not in html


def test_copied_department_member_sees_mail(client_as, app):
    with app.app_context():
        mail_id = _residence()
        _act("sejour", mail_id, "copy", copy_departments=["CAB-BRE"])
        copies = db.session.execute(
            select(func.count()).select_from(DistributionEntry).where(DistributionEntry.role == COPY)
        ).scalar_one()
    assert copies == 1
    assert client_as("cabinet").get(f"/mail/{mail_id}").status_code == 200
    assert client_as("legalite").get(f"/mail/{mail_id}").status_code == 404


def test_rejected_action_flashes_field_messages(app, client_as):
    with app.app_context():
        mail_id = _residence()
        _act("sejour", mail_id, "qualify")
        _act("sejour", mail_id, "ask_opinion", opinion_department="DMI-SN")
    client = client_as("naturalisation")
    token = csrf_token(client.get(f"/mail/{mail_id}").get_data(as_text=True))

    page = client.post(f"/mail/{mail_id}/action/give_opinion", data={"csrf_token": token, "comment": ""},
                       follow_redirects=True).get_data(as_text=True).replace("&#39;", "'")

    assert "Un commentaire est obligatoire pour cette action." in page
    assert "en rouge" not in page


def test_rejected_action_form_keeps_values(app, client_as):
    with app.app_context():
        mail_id = _residence()
    client = client_as("sejour")
    token = csrf_token(client.get(f"/mail/{mail_id}").get_data(as_text=True))

    response = client.post(f"/mail/{mail_id}/action/ask_opinion", data={
        "csrf_token": token, "opinion_department": "DMI-SN", "opinion_due_date": "01/12/2020",
        "comment": "Merci de vérifier la <b>situation</b> du demandeur.",
    })
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert '<details class="mail-action panel panel-default" data-action="ask_opinion" open>' in page
    assert 'class="alert alert-danger action-error"' in page
    assert 'value="01/12/2020"' in page
    assert "Merci de vérifier la &lt;b&gt;situation&lt;/b&gt; du demandeur.</textarea>" in page
    assert '<option value="DMI-SN" selected>' in page
    with app.app_context():
        assert [entry.event for entry in _history(mail_id)] == ["registered"]
        loaded_at = db.session.get(Mail, mail_id).row_version
        # A colleague acts meanwhile: the form sent again must still carry the version it was loaded at.
        _act("chef.sejour", mail_id, "qualify")
    again = client.post(f"/mail/{mail_id}/action/ask_opinion", data={
        "csrf_token": token, "row_version": str(loaded_at), "opinion_department": "DMI-SN",
        "opinion_due_date": "32/13/2026",
    }).get_data(as_text=True)
    form = again[again.index('id="action-ask_opinion"'):]
    assert f'name="row_version" value="{loaded_at}"' in form[:form.index("</form>")]


def test_history_names_people_and_departments(app, client_as):
    with app.app_context():
        mail_id = _residence()
        cabinet = user_context("cabinet")
        _act("sejour", mail_id, "copy", copy_user_ids=[cabinet.user_id], copy_departments=["CAB-BRE"])
        department = db.session.execute(select(Department).where(Department.code == "CAB-BRE")).scalar_one()
        expected = f"{cabinet.display_name}, {department.label('fr')} (CAB-BRE)"

    page = html.unescape(client_as("sejour").get(f"/mail/{mail_id}").get_data(as_text=True))

    assert f"copie à {expected}" in page


def _notified(username: str, mail_id: int, event: str) -> int:
    return db.session.execute(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_context(username).user_id, Notification.mail_id == mail_id,
        Notification.event == event,
    )).scalar_one()


def test_department_asked_for_opinion_is_notified(app_context):
    mail_id = _residence()
    _act("sejour", mail_id, "qualify")

    _act("sejour", mail_id, "ask_opinion", opinion_department="DMI-SN", comment="Avis sur la résidence ?")

    assert _notified("naturalisation", mail_id, "opinion_requested") == 1
    assert _notified("cabinet", mail_id, "opinion_requested") == 0
    params = db.session.execute(select(Notification.params).where(Notification.event == "opinion_requested")).scalar_one()
    assert params["comment"] == "Avis sur la résidence ?"
    assert params["due_date"]


def test_copied_department_is_notified(app_context):
    mail_id = _residence()

    _act("sejour", mail_id, "copy", copy_departments=["CAB-BRE"])

    assert _notified("cabinet", mail_id, "copy_received") == 1
    assert _notified("naturalisation", mail_id, "copy_received") == 0

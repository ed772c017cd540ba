"""Absences: the delegate sees the absent agent's baskets and acts on their behalf, recorded in history."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.absences.models import Absence
from app.absences.operations import absences_of, cancel_absence, declare_absence, return_summaries
from app.actions.operations import ActionInput, perform_action
from app.core.errors import NotFound, PermissionDenied, ValidationFailed
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import today_in_paris
from tests.conftest import confidential_for_sejour, csrf_token, user_context


def _absence(starts_in: int = 0, days: int = 5, user: str = "sejour", delegate: str = "naturalisation") -> Absence:
    today = today_in_paris()
    return declare_absence(
        user_context(user), today + timedelta(days=starts_in), today + timedelta(days=starts_in + days),
        user_context(delegate).user_id,
    )


def test_delegate_acts_on_behalf(app_context):
    mail_id = confidential_for_sejour()
    with pytest.raises(NotFound):
        perform_action(user_context("naturalisation"), mail_id, "qualify", ActionInput())
    _absence()
    result = perform_action(user_context("naturalisation"), mail_id, "qualify", ActionInput())
    assert result.on_behalf_of_id == user_context("sejour").user_id
    entry = db.session.execute(
        select(HistoryEntry).where(HistoryEntry.mail_id == mail_id, HistoryEntry.event == "qualify")
    ).scalar_one()
    assert entry.actor_id == user_context("naturalisation").user_id
    assert entry.on_behalf_of_id == user_context("sejour").user_id


def test_future_absence_grants_nothing_yet(app_context):
    mail_id = confidential_for_sejour()
    _absence(starts_in=3)
    with pytest.raises(NotFound):
        perform_action(user_context("naturalisation"), mail_id, "qualify", ActionInput())


def test_cancelled_absence_ends_delegation(app_context):
    mail_id = confidential_for_sejour()
    absence = _absence()
    cancel_absence(user_context("sejour"), absence.id)
    with pytest.raises(NotFound):
        perform_action(user_context("naturalisation"), mail_id, "qualify", ActionInput())


def test_only_owner_cancels(app_context):
    absence = _absence()
    with pytest.raises(NotFound):
        cancel_absence(user_context("naturalisation"), absence.id)


@pytest.mark.parametrize(
    ("start", "end", "delegate", "field"),
    [(0, -1, "naturalisation", "ends_on"), (0, 3, "sejour", "delegate_id"), (-10, -5, "naturalisation", "ends_on")],
)
def test_invalid_absence_rejected(app_context, start, end, delegate, field):
    today = today_in_paris()
    with pytest.raises(ValidationFailed) as failure:
        declare_absence(user_context("sejour"), today + timedelta(days=start), today + timedelta(days=end),
                        user_context(delegate).user_id)
    assert field in failure.value.field_errors


def test_overlapping_absence_rejected(app_context):
    _absence()
    with pytest.raises(ValidationFailed):
        _absence(starts_in=2, delegate="renouvellement")


def test_agent_cannot_declare_for_another(app_context):
    today = today_in_paris()
    with pytest.raises(PermissionDenied):
        declare_absence(user_context("renouvellement"), today, today, user_context("naturalisation").user_id,
                        absent_user_id=user_context("sejour").user_id)


def test_head_declares_absence_of_agent(app_context):
    today = today_in_paris()
    head, agent = user_context("chef.sejour"), user_context("sejour")

    absence = declare_absence(head, today, today + timedelta(days=4), user_context("renouvellement").user_id,
                              absent_user_id=agent.user_id)

    assert absence.user_id == agent.user_id
    assert absence in absences_of(head)
    assert absence not in absences_of(user_context("subventions"))
    with pytest.raises(PermissionDenied):
        declare_absence(head, today, today, agent.user_id, absent_user_id=user_context("subventions").user_id)
    cancel_absence(head, absence.id)
    assert db.session.get(Absence, absence.id).cancelled


def test_head_cannot_lend_themselves_rights(app_context):
    today = today_in_paris()
    head = user_context("chef.sejour")
    # Named delegate of an agent's absence, the head would see that agent's confidential mail.
    with pytest.raises(ValidationFailed) as own:
        declare_absence(head, today, today + timedelta(days=2), head.user_id, absent_user_id=user_context("sejour").user_id)
    assert "delegate_id" in own.value.field_errors
    # The administrator belongs to a department the secretary general heads, but has rights he lacks.
    general = user_context("secretaire.general")
    with pytest.raises(PermissionDenied):
        declare_absence(general, today, today + timedelta(days=2), user_context("cabinet").user_id,
                        absent_user_id=user_context("admin").user_id)


def test_rejected_absence_form_keeps_delegate(app, client_as):
    delegate_id = user_context_id(app, "naturalisation")
    client = client_as("sejour")
    form = client.get("/absences/").get_data(as_text=True)

    page = client.post("/absences/", data={
        "csrf_token": csrf_token(form), "starts_on": "", "ends_on": "31/12/2026", "delegate_id": str(delegate_id),
    }).get_data(as_text=True)

    assert f'<option value="{delegate_id}" selected>' in page
    assert 'id="absent_user_id"' not in page
    head_page = client_as("chef.sejour").get("/absences/").get_data(as_text=True)
    assert 'id="absent_user_id"' in head_page


def test_delegate_opens_absent_baskets(app, client_as):
    with app.app_context():
        mail_id = confidential_for_sejour()
        sejour_id = user_context("sejour").user_id
    delegate = client_as("naturalisation")
    assert delegate.get(f"/mail/basket/to_process?for={sejour_id}").status_code == 404

    page = delegate.get("/absences/").get_data(as_text=True)
    sejour_client = client_as("sejour")
    form = sejour_client.get("/absences/").get_data(as_text=True)
    today = today_in_paris()
    response = sejour_client.post("/absences/", data={
        "csrf_token": csrf_token(form), "starts_on": today.strftime("%d/%m/%Y"),
        "ends_on": (today + timedelta(days=3)).strftime("%d/%m/%Y"),
        "delegate_id": str(user_context_id(app, "naturalisation")),
    })
    assert response.status_code == 302
    assert "data-absent" not in page

    basket = delegate.get(f"/mail/basket/to_process?for={sejour_id}").get_data(as_text=True)
    assert 'id="acting-for"' in basket
    assert f'data-mail="{mail_id}"' in basket
    assert f'data-absent="{sejour_id}"' in delegate.get("/absences/").get_data(as_text=True)
    home = delegate.get("/").get_data(as_text=True)
    assert f'data-absent="{sejour_id}"' in home
    assert f'href="/mail/basket/to_process?for={sejour_id}"' in home
    # The absent agent's baskets show their counts, the confidential mail included.
    count = re.search(r'data-count="to_process">(\d+)<', home)
    assert count is not None
    assert int(count.group(1)) >= 1
    assert delegate.get(f"/mail/{mail_id}").status_code == 200
    assert client_as("renouvellement").get(f"/mail/basket/to_process?for={sejour_id}").status_code == 404


def test_returning_agent_sees_what_was_done(app, client_as):
    with app.app_context():
        mail_id = confidential_for_sejour()
        today = today_in_paris()
        absence = _absence(starts_in=0, days=2)
        perform_action(user_context("naturalisation"), mail_id, "qualify", ActionInput())
        chrono = db.session.execute(select(Mail.chrono).where(Mail.id == mail_id)).scalar_one()
        absence_id = absence.id
        summaries_during = return_summaries(user_context("sejour"), today)
        summaries_after = return_summaries(user_context("sejour"), today + timedelta(days=3))
        summaries_later = return_summaries(user_context("sejour"), today + timedelta(days=20))

    assert summaries_during == []
    assert [(item.absence.id, item.actions, item.mails) for item in summaries_after] == [(absence_id, 1, [(mail_id, chrono)])]
    assert summaries_later == []


def test_home_page_sums_up_the_absence(app, client_as):
    from datetime import UTC, datetime, time

    with app.app_context():
        mail_id = confidential_for_sejour()
        sejour, delegate = user_context("sejour"), user_context("naturalisation")
        ended = today_in_paris() - timedelta(days=2)
        db.session.add(Absence(user_id=sejour.user_id, delegate_id=delegate.user_id,
                               starts_on=ended - timedelta(days=3), ends_on=ended))
        db.session.add(HistoryEntry(mail_id=mail_id, at=datetime.combine(ended, time(10, 0), UTC), actor_id=delegate.user_id,
                                    on_behalf_of_id=sejour.user_id, event="qualify", details={}))
        db.session.commit()
        chrono = db.session.execute(select(Mail.chrono).where(Mail.id == mail_id)).scalar_one()

    home = html.unescape(client_as("sejour").get("/").get_data(as_text=True))

    assert "Pendant votre absence du" in home
    assert f"{delegate.display_name} a agi 1 fois pour votre compte" in home
    assert f'href="/mail/{mail_id}">{chrono}</a>' in home


def user_context_id(app, username: str) -> int:
    with app.app_context():
        return user_context(username).user_id

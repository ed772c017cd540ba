"""Distribution lists and the baskets built on them: copies, opinions, due-date bands, closing age."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.actions.operations import ActionInput, perform_action
from app.configuration.operations import current_configuration
from app.core.types import utcnow
from app.correspondents.operations import CorrespondentInput
from app.deadlines.calendar import get_calendar
from app.distribution.models import COPY, DistributionEntry
from app.extensions import db
from app.mail.baskets import basket_page
from app.mail.models import Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import user_context


def _complaint(subject: str = "Réclamation", department: str | None = "DMI-SSE-BPT", confidential: bool = False,
               assignee: str | None = None) -> int:
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="public_complaint", subject=subject, arrival_date=today_in_paris() - timedelta(days=1),
            handling_department=department, confidential=confidential,
            assignee_id=user_context(assignee).user_id if assignee else None,
            correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
        ),
    )
    return mail.id


def _basket_ids(username: str, basket_id: str) -> list[int]:
    page = basket_page(user_context(username), current_configuration(), basket_id, 1, 100)
    assert page.total == len(page.items)
    return [mail.id for mail in page.items]


def _act(username: str, mail_id: int, action_id: str, **values) -> None:
    perform_action(user_context(username), mail_id, action_id, ActionInput(**values))


def test_department_model_adds_copy(app_context):
    mail_id = _complaint(department="CAB-BRE")
    mail = db.session.get(Mail, mail_id)
    assert mail.assignee.username == "cabinet"
    targets = db.session.execute(
        select(DistributionEntry.user_id).where(DistributionEntry.mail_id == mail_id, DistributionEntry.role == COPY)
    ).scalars().all()
    assert targets == [user_context("directeur.cabinet").user_id]


def test_copy_basket_with_unread_marks(app_context):
    first, second = _complaint("Première"), _complaint("Seconde")
    for mail_id in (first, second):
        _act("sejour", mail_id, "copy", copy_user_ids=[user_context("legalite").user_id])
    assert sorted(_basket_ids("legalite", "in_copy")) == sorted([first, second])
    _act("legalite", first, "mark_read")
    page = basket_page(user_context("legalite"), current_configuration(), "in_copy", 1, 50)
    assert page.unread_ids == {second}


def test_department_copy_reaches_members(app_context):
    mail_id = _complaint()
    _act("sejour", mail_id, "copy", copy_departments=["DCL-BCL"])
    assert _basket_ids("legalite", "in_copy") == [mail_id]
    assert _basket_ids("manifestations", "in_copy") == []


def test_opinion_baskets_both_sides(app_context):
    mail_id = _complaint()
    _act("sejour", mail_id, "ask_opinion", opinion_user_id=user_context("subventions").user_id)
    assert _basket_ids("subventions", "opinions_to_give") == [mail_id]
    assert _basket_ids("sejour", "opinions_pending") == [mail_id]
    _act("subventions", mail_id, "give_opinion", comment="Rien à signaler")
    assert _basket_ids("subventions", "opinions_to_give") == []
    assert _basket_ids("sejour", "opinions_pending") == []


def test_due_bands(app_context):
    today = today_in_paris()
    late, soon, later = _complaint("En retard"), _complaint("Bientôt"), _complaint("Plus tard")
    soon_date = get_calendar("metropole").add_working_days(today, 2)
    for mail_id, due in ((late, today - timedelta(days=1)), (soon, soon_date), (later, today + timedelta(days=30))):
        db.session.execute(update(Mail).where(Mail.id == mail_id).values(due_date=due))
    db.session.commit()
    assert _basket_ids("sejour", "late") == [late]
    assert _basket_ids("sejour", "due_soon") == [soon]


def test_recently_closed(app_context):
    recent, old = _complaint("Récent"), _complaint("Ancien")
    for mail_id in (recent, old):
        _act("sejour", mail_id, "close")
    db.session.execute(update(Mail).where(Mail.id == old).values(closed_at=utcnow() - timedelta(days=45)))
    db.session.commit()
    assert _basket_ids("sejour", "closed_recently") == [recent]


def test_to_qualify_then_to_process(app_context):
    mail_id = _complaint()
    assert _basket_ids("sejour", "to_qualify") == [mail_id]
    _act("sejour", mail_id, "qualify")
    assert _basket_ids("sejour", "to_qualify") == []
    assert _basket_ids("sejour", "to_process") == [mail_id]


def test_direction_basket_for_managers(app_context):
    office, service = _complaint(department="CAB-BRE"), _complaint(department="CAB-SIDPC")
    assert sorted(_basket_ids("directeur.cabinet", "my_direction")) == sorted([office, service])


def test_direction_basket_keeps_visibility(app_context):
    # The head of DMI-SSE sees the directorate's basket, but only the mail the visibility rule shows him.
    bureau, other_service = _complaint(department="DMI-SSE-BRT"), _complaint(department="DMI-SN")
    assert _basket_ids("chef.sejour", "my_direction") == [bureau]
    assert other_service not in _basket_ids("chef.sejour", "my_direction")


def test_direction_beyond_departments_split(app_context):
    # DMI-SN lies in the head of DMI-SSE's directorate but outside his departments, so the
    # basket tests the whole rule there and confidentiality alone inside DMI-SSE.
    chief = user_context("chef.sejour")
    inside_plain = _complaint(department="DMI-SSE-BRT")
    inside_confidential = _complaint(department="DMI-SSE-BPT", confidential=True, assignee="sejour")
    inside_confidential_copied = _complaint(department="DMI-SSE-BPT", confidential=True, assignee="sejour")
    _act("sejour", inside_confidential_copied, "copy", copy_user_ids=[chief.user_id])
    outside_plain = _complaint(department="DMI-SN")
    outside_copied_to_chief = _complaint(department="DMI-SN", assignee="naturalisation")
    _act("naturalisation", outside_copied_to_chief, "copy", copy_user_ids=[chief.user_id])
    outside_copied_to_service = _complaint(department="DMI-SN", assignee="naturalisation")
    _act("naturalisation", outside_copied_to_service, "copy", copy_departments=["DMI-SSE"])

    listed = _basket_ids("chef.sejour", "my_direction")

    assert sorted(listed) == sorted(
        [inside_plain, inside_confidential_copied, outside_copied_to_chief, outside_copied_to_service]
    )
    assert inside_confidential not in listed
    assert outside_plain not in listed


@pytest.mark.parametrize(("username", "status"), [("chef.sejour", 200), ("sejour", 404), ("courrier", 404)])
def test_direction_basket_hidden_from_agents(client_as, username, status):
    client = client_as(username)
    assert client.get("/mail/basket/my_direction").status_code == status
    assert ('data-basket="my_direction"' in client.get("/").get_data(as_text=True)) == (status == 200)


def test_confidential_seen_by_list_only(app, client_as):
    with app.app_context():
        mail_id = _complaint(confidential=True, assignee="sejour")
        _act("sejour", mail_id, "copy", copy_user_ids=[user_context("legalite").user_id])
    assert client_as("legalite").get(f"/mail/{mail_id}").status_code == 200
    assert client_as("chef.sejour").get(f"/mail/{mail_id}").status_code == 404
    with app.app_context():
        _act("sejour", mail_id, "ask_opinion", opinion_department="DCL-BAMP")
    assert client_as("manifestations").get(f"/mail/{mail_id}").status_code == 200
    assert client_as("renouvellement").get(f"/mail/{mail_id}").status_code == 404


def test_basket_page_shows_declared_columns(client_as, app):
    with app.app_context():
        _complaint()
    html = client_as("sejour").get("/mail/basket/to_qualify").get_data(as_text=True)
    declared = current_configuration_columns(app, "to_qualify")
    headers = [part.split('"', 1)[0] for part in html.split('data-column="')[1:]]
    assert headers == declared


def current_configuration_columns(app, basket_id: str) -> list[str]:
    with app.app_context():
        return list(current_configuration().baskets[basket_id].columns)

"""Permission matrix: every demo agent against every mail page, file, action URL and API route.

The expected answers are written out by hand from the demo organisation, not
computed by the code under test.  Action requests carry a comment longer than
the limit, so an allowed action is refused at its input check (400, or a
message on the page) and nothing changes between requests.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from app.attachments.operations import Upload
from app.correspondents.operations import CorrespondentInput
from app.demo.users import DEMO_USERS
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import csrf_token, user_context

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TOO_LONG = "x" * 5001
ACTIONS = ("qualify", "assign", "redirect", "copy", "ask_opinion", "give_opinion", "close",
           "close_without_follow_up", "reopen", "mark_read")
# Actions of the handling side: they need the process permission and the assignee or the department tree.
HANDLING_ACTIONS = ("qualify", "assign", "redirect", "copy", "ask_opinion", "close", "close_without_follow_up")

# Who sees each mail.  "bpt" and "cabinet" are registered by the mail room (SG-BC, under SG).
VISIBLE = {
    "bpt": {"sejour", "chef.sejour", "courrier", "secretaire.general", "admin"},
    "confidential": {"sejour", "courrier", "admin"},
    "cabinet": {"cabinet", "directeur.cabinet", "courrier", "secretaire.general", "admin"},
}
# Who may run the handling actions on each mail.
HANDLERS = {
    "bpt": {"sejour", "chef.sejour", "admin"},
    "confidential": {"sejour", "admin"},
    "cabinet": {"cabinet", "directeur.cabinet", "admin"},
}
# Who is on each mail's list in copy (the CAB-BRE distribution-list model copies the head of CAB).
COPIES = {"bpt": set(), "confidential": set(), "cabinet": {"directeur.cabinet"}}
USERNAMES = [user.username for user in DEMO_USERS]


def _register(department: str, confidential: bool = False) -> tuple[int, int]:
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="public_complaint", subject=f"Réclamation pour {department}",
            arrival_date=today_in_paris() - timedelta(days=1), handling_department=department,
            confidential=confidential,
            assignee_id=user_context("sejour").user_id if confidential else None,
            correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
            uploads=[Upload(io.BytesIO(PDF), "réclamation.pdf")],
        ),
    )
    return mail.id, mail.attachments[0].id


@pytest.fixture()
def mails(app):
    with app.app_context():
        return {
            "bpt": _register("DMI-SSE-BPT"),
            "confidential": _register("DMI-SSE-BPT", confidential=True),
            "cabinet": _register("CAB-BRE"),
        }


def _expected_api_status(username: str, key: str, action_id: str) -> int:
    if username not in VISIBLE[key]:
        return 404
    if action_id == "reopen":
        return 409
    if action_id in HANDLING_ACTIONS:
        return 400 if username in HANDLERS[key] else 403
    if action_id == "mark_read":
        return 400 if username in COPIES[key] else 403
    return 403


@pytest.mark.parametrize("username", USERNAMES)
def test_pages_files_and_api(client_as, mails, username):
    client = client_as(username)
    for key, (mail_id, attachment_id) in mails.items():
        expected = 200 if username in VISIBLE[key] else 404
        for url in (f"/mail/{mail_id}", f"/attachments/{attachment_id}/download",
                    f"/attachments/{attachment_id}/preview", f"/api/mail/{mail_id}"):
            assert client.get(url).status_code == expected, f"{username} GET {url}"


@pytest.mark.parametrize("username", USERNAMES)
def test_action_api(client_as, mails, username):
    client = client_as(username)
    token = csrf_token(client.get("/absences/").get_data(as_text=True))
    for key, (mail_id, _attachment) in mails.items():
        for action_id in ACTIONS:
            response = client.post(
                f"/api/mail/{mail_id}/actions/{action_id}", json={"comment": TOO_LONG},
                headers={"X-CSRFToken": token},
            )
            expected = _expected_api_status(username, key, action_id)
            assert response.status_code == expected, f"{username} {action_id} on {key}: {response.get_json()}"


@pytest.mark.parametrize("username", USERNAMES)
def test_action_pages(client_as, mails, username):
    client = client_as(username)
    token = csrf_token(client.get("/absences/").get_data(as_text=True))
    for key, (mail_id, _attachment) in mails.items():
        for action_id in ACTIONS:
            response = client.post(f"/mail/{mail_id}/action/{action_id}", data={"csrf_token": token, "comment": TOO_LONG})
            api_status = _expected_api_status(username, key, action_id)
            # A rejected form comes back filled (400); a refusal of the action redirects with a message.
            expected = api_status if api_status in (400, 403, 404) else 302
            assert response.status_code == expected, f"{username} {action_id} on {key}"


@pytest.mark.parametrize("username", USERNAMES)
def test_basket_api_lists_visible_only(client_as, mails, username):
    client = client_as(username)
    visible_ids = {mails[key][0] for key, users in VISIBLE.items() if username in users}
    for basket_id in ("to_qualify", "to_process", "in_copy", "my_department", "registered_by_me"):
        response = client.get(f"/api/mail/basket/{basket_id}")
        assert response.status_code == 200, basket_id
        listed = {item["id"] for item in response.get_json()["items"]}
        assert listed <= visible_ids, f"{username} {basket_id}"


def test_unknown_mail_and_action(client_as, mails):
    client = client_as("admin")
    token = csrf_token(client.get("/absences/").get_data(as_text=True))
    missing = max(mail_id for mail_id, _ in mails.values()) + 1000
    assert client.get(f"/api/mail/{missing}").status_code == 404
    assert client.post(f"/api/mail/{mails['bpt'][0]}/actions/teleport", json={},
                       headers={"X-CSRFToken": token}).status_code == 404

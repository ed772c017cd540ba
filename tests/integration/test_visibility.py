"""One visibility rule for pages, downloads, baskets and the directory API."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from app.attachments.operations import Upload
from app.configuration.operations import current_configuration
from app.correspondents.operations import CorrespondentInput
from app.mail.baskets import basket_page
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import user_context

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _register(department: str, confidential: bool = False, assignee: str | None = None) -> tuple[int, int]:
    assignee_id = user_context(assignee).user_id if assignee else None
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="public_complaint",
            subject=f"Réclamation pour {department}",
            arrival_date=today_in_paris() - timedelta(days=1),
            handling_department=department,
            confidential=confidential,
            assignee_id=assignee_id,
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
            "cabinet": _register("CAB-BRE"),
            "confidential": _register("DMI-SSE-BPT", confidential=True, assignee="sejour"),
        }


# (user, mail key, may see)
MATRIX = [
    ("sejour", "bpt", True),
    ("sejour", "cabinet", False),
    ("sejour", "confidential", True),
    ("renouvellement", "bpt", False),
    ("chef.sejour", "bpt", True),
    ("chef.sejour", "confidential", False),
    ("cabinet", "bpt", False),
    ("cabinet", "cabinet", True),
    ("directeur.cabinet", "cabinet", True),
    ("courrier", "bpt", True),
    ("admin", "confidential", True),
    ("subventions", "bpt", False),
]


@pytest.mark.parametrize(("username", "key", "allowed"), MATRIX)
def test_detail_and_files_follow_rule(client_as, mails, username, key, allowed):
    mail_id, attachment_id = mails[key]
    client = client_as(username)
    urls = [f"/mail/{mail_id}", f"/attachments/{attachment_id}/download", f"/attachments/{attachment_id}/preview"]
    for url in urls:
        status = client.get(url).status_code
        assert status == (200 if allowed else 404), f"{username} {url}"


def test_anonymous_redirected_to_login(app, mails):
    client = app.test_client()
    mail_id, attachment_id = mails["bpt"]
    for url in (f"/mail/{mail_id}", f"/attachments/{attachment_id}/download", "/mail/basket/to_process", "/api/correspondents/search?q=mar"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login/" in response.headers["Location"]


def test_baskets_hold_only_visible_mail(app, mails):
    with app.app_context():
        configuration = current_configuration()
        subjects = {}
        for username in ("sejour", "chef.sejour", "cabinet", "renouvellement"):
            page = basket_page(user_context(username), configuration, "to_process", 1, 50)
            subjects[username] = sorted(mail.id for mail in page.items)
            assert page.total == len(page.items)
    assert subjects["sejour"] == sorted([mails["bpt"][0], mails["confidential"][0]])
    assert subjects["chef.sejour"] == [mails["bpt"][0]]
    assert subjects["cabinet"] == [mails["cabinet"][0]]
    assert subjects["renouvellement"] == []


def test_menu_counts_match_basket(client_as, mails):
    html = client_as("chef.sejour").get("/").get_data(as_text=True)
    assert 'data-basket="to_process">' in html
    segment = html.split('data-basket="to_process">', 1)[1]
    assert '<span class="badge">1</span>' in segment.split("</a>", 1)[0]


def test_unknown_basket_is_not_found(client_as):
    assert client_as("sejour").get("/mail/basket/nope").status_code == 404


def test_agent_cannot_open_incoming_form(client_as):
    assert client_as("sejour").get("/mail/register/residence_permit_request").status_code == 403


def test_menu_count_stops_at_cap(app, monkeypatch, client_as):
    import app.mail.baskets as baskets

    with app.app_context():
        for _ in range(3):
            _register("DMI-SSE-BPT")
    monkeypatch.setattr(baskets, "MENU_COUNT_CAP", 2)
    html = client_as("sejour").get("/").get_data(as_text=True)
    segment = html.split('data-basket="to_process">', 1)[1].split("</a>", 1)[0]
    assert '<span class="badge">1+</span>' in segment

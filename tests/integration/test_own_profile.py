"""Flask-AppBuilder's pages in the portal's layout and language: each user's profile, rejected requests, the confirmation dialog."""

from __future__ import annotations

import html
import re

import pytest

from app.demo.users import DEMO_PASSWORD, DEMO_USERS
from tests.conftest import csrf_token, login

USERNAMES = [user.username for user in DEMO_USERS]


@pytest.mark.parametrize("username", USERNAMES)
def test_profile_opens_for_every_user(client_as, username):
    client = client_as(username)

    profile = client.get("/users/userinfo/")
    password_form = client.get("/resetmypassword/form")
    name_form = client.get("/userinfoeditview/form")

    assert profile.status_code == 200
    assert username in profile.get_data(as_text=True)
    assert password_form.status_code == 200
    assert name_form.status_code == 200


def test_profile_buttons_open_their_forms(client_as):
    client = client_as("sejour")
    page = html.unescape(client.get("/users/userinfo/").get_data(as_text=True))
    # Each button posts the page's hidden action form, with its CSRF token, to its action's address.
    paths = re.findall(r'execute_single\(\'(/users/action/(?:userinfoedit|resetmypassword)/\d+)\'', page)

    token = re.search(r'name="csrf_token" value="([^"]+)"', page)

    assert len(paths) == 2
    assert token is not None
    targets = sorted(client.post(path, data={"csrf_token": token.group(1)}).headers.get("Location", "") for path in paths)
    assert [target.split("?")[0] for target in targets] == ["/resetmypassword/form", "/userinfoeditview/form"]


def test_profile_shows_role_labels(client_as):
    page = html.unescape(client_as("courrier").get("/users/userinfo/").get_data(as_text=True))

    assert "Agent du bureau du courrier" in page
    assert "mail_clerk" not in page
    assert "True" not in page


def test_agent_changes_own_password(app, client_as):
    client = client_as("sejour")
    form = client.get("/resetmypassword/form").get_data(as_text=True)
    new_password = "Séjour-2026-nouveau!"

    try:
        changed = client.post("/resetmypassword/form", data={
            "password": new_password, "conf_password": new_password, "csrf_token": csrf_token(form),
        })
        fresh = app.test_client()
        login(fresh, "sejour", password=new_password)
    finally:
        with app.app_context():
            security = app.appbuilder.sm
            security.reset_password(security.find_user(username="sejour").id, DEMO_PASSWORD)

    assert changed.status_code == 302


def test_forbidden_page_translated(client_as):
    response = client_as("sejour").get("/users/list/")
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 403
    assert "Vous n'avez pas le droit d'ouvrir cette page." in page
    assert "Forbidden" not in page
    assert 'id="header-search"' in page


def test_wrong_method_page_translated(client_as):
    response = client_as("sejour").get("/mail/1/action/qualify")
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 405
    assert "Cette page ne s'ouvre pas par son adresse" in page
    assert "Method Not Allowed" not in page
    assert "POST" in response.headers["Allow"]


def test_confirm_dialog_translated(client_as):
    page = client_as("sejour").get("/").get_data(as_text=True)

    assert 'id="modal-confirm"' in page
    assert ">Annuler<" in page
    assert ">Cancel<" not in page


def test_short_password_rejected(app, client_as):
    client = client_as("sejour")
    form = client.get("/resetmypassword/form").get_data(as_text=True)

    response = client.post("/resetmypassword/form", data={
        "password": "court", "conf_password": "court", "csrf_token": csrf_token(form),
    })
    fresh = app.test_client()
    login(fresh, "sejour")

    assert response.status_code == 200
    assert "au moins 12 caractères" in html.unescape(response.get_data(as_text=True))


def test_admin_user_pages_open(client_as):
    client = client_as("admin")

    listing = client.get("/users/list/")
    added = client.get("/users/add")

    assert listing.status_code == 200
    assert "Agent du bureau du courrier" in html.unescape(listing.get_data(as_text=True))
    assert added.status_code == 200


def test_admin_user_pages_read_as_words(app, client_as):
    client = client_as("admin")
    with app.app_context():
        user_id = app.appbuilder.sm.find_user(username="courrier").id

    listing = html.unescape(client.get("/users/list/").get_data(as_text=True))
    user_page = html.unescape(client.get(f"/users/show/{user_id}").get_data(as_text=True))

    assert "True" not in listing
    assert "Oui" in listing
    assert "None" not in user_page
    assert client.get("/userstatschartview/chart/").status_code == 404

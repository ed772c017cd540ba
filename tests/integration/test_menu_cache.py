"""The rendered menu of the portal's pages: kept per user a few seconds, right for each user, page and language."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import text

from app.correspondents.operations import CorrespondentInput
from app.extensions import db
from app.mail import menu_counts
from app.mail.menu_counts import forget_all_counts
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import user_context

ACTIVE_BASKET = re.compile(r'<li class="active">\s*<a href="/mail/basket/(\w+)"')
UNREAD = re.compile(r'id="unread-notifications">(\d+)</span>')
HEADER_QUERY = re.compile(r'id="header-search-q"[^>]*value="([^"]*)"')


# The tests push an application context only around their own operations: a client's requests
# inside one would share its ``g``, and with it the logged-in user of the previous client.


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_all_counts()
    yield
    forget_all_counts()


def _register(app) -> None:
    """Register a mail assigned to "sejour", who is notified of it."""
    with app.app_context():
        register_mail(
            user_context("courrier"),
            Registration(
                mail_type="public_complaint", subject="Réclamation", arrival_date=today_in_paris() - timedelta(days=1),
                handling_department="DMI-SSE-BPT", assignee_id=user_context("sejour").user_id,
                correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
            ),
        )


def _unread(page: str) -> int:
    match = UNREAD.search(page)
    return int(match.group(1)) if match else 0


def test_active_basket_per_page(app, client_as):
    client = client_as("sejour")

    to_process = client.get("/mail/basket/to_process").get_data(as_text=True)
    my_department = client.get("/mail/basket/my_department").get_data(as_text=True)
    to_process_again = client.get("/mail/basket/to_process").get_data(as_text=True)
    home = client.get("/").get_data(as_text=True)

    assert ACTIVE_BASKET.findall(to_process) == ["to_process"]
    assert ACTIVE_BASKET.findall(my_department) == ["my_department"]
    assert ACTIVE_BASKET.findall(to_process_again) == ["to_process"]
    assert ACTIVE_BASKET.findall(home) == []


def test_menu_per_user(app, client_as):
    agent = client_as("sejour").get("/").get_data(as_text=True)
    administrator = client_as("admin").get("/").get_data(as_text=True)
    agent_again = client_as("sejour").get("/").get_data(as_text=True)

    assert 'id="nav-routing-try"' in administrator
    assert 'id="nav-routing-try"' not in agent
    assert 'id="nav-routing-try"' not in agent_again
    with app.app_context():
        agent_name, administrator_name = user_context("sejour").display_name, user_context("admin").display_name
    assert str(escape(agent_name)) in agent_again
    assert str(escape(administrator_name)) not in agent_again


def test_menu_per_language(app, client_as):
    client = client_as("sejour")

    french = client.get("/").get_data(as_text=True)
    client.get("/lang/en")
    english = client.get("/").get_data(as_text=True)

    assert "Registre" in french
    assert "Mail register" in english
    assert "Registre" not in english


def test_local_write_refreshes_menu(app, client_as):
    client = client_as("sejour")
    before = _unread(client.get("/").get_data(as_text=True))

    _register(app)

    assert _unread(client.get("/").get_data(as_text=True)) == before + 1


def test_menu_kept_until_cleared(app, client_as):
    _register(app)
    client = client_as("sejour")
    assert _unread(client.get("/").get_data(as_text=True)) == 1

    # Read through another connection, as another process would: nothing in this process clears the cache.
    with app.app_context(), db.engine.connect() as other:
        other.execute(text("UPDATE notification SET read_at = CURRENT_TIMESTAMP"))
        other.commit()

    assert _unread(client.get("/").get_data(as_text=True)) == 1
    forget_all_counts()
    assert _unread(client.get("/").get_data(as_text=True)) == 0


def test_search_query_in_header(app, client_as):
    client = client_as("sejour")
    client.get("/").get_data(as_text=True)

    first = client.get("/search/?q=titre+de+s%C3%A9jour").get_data(as_text=True)
    second = client.get("/search/?q=naturalisation").get_data(as_text=True)

    assert HEADER_QUERY.findall(first) == ["titre de séjour"]
    assert HEADER_QUERY.findall(second) == ["naturalisation"]


def test_menu_not_kept_across_write(app, client_as, monkeypatch):
    """A menu rendered while another thread commits a write is shown once, not kept."""
    client = client_as("sejour")
    read_unread_count = app.jinja_env.globals["unread_notification_count"]

    def count_then_write() -> int:
        count = read_unread_count()
        # Another request thread of this process commits a notification for the same user.
        writer = threading.Thread(target=_register, args=(app,))
        writer.start()
        writer.join()
        return count

    monkeypatch.setitem(app.jinja_env.globals, "unread_notification_count", count_then_write)
    during = client.get("/").get_data(as_text=True)
    monkeypatch.setitem(app.jinja_env.globals, "unread_notification_count", read_unread_count)
    after = client.get("/").get_data(as_text=True)

    assert _unread(during) == 0
    assert _unread(after) == 1


def test_unknown_basket_adds_no_entry(app, client_as):
    client = client_as("sejour")
    client.get("/mail/basket/to_process")
    entries = len(menu_counts._entries)

    for number in range(5):
        assert client.get(f"/mail/basket/unknown{number}").status_code == 404

    assert len(menu_counts._entries) == entries + 1

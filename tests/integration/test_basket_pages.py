"""Basket pages read as merged index ranges list the same mails, in the same order, as one sorted statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from app.configuration.operations import current_configuration
from app.correspondents.operations import CorrespondentInput
from app.extensions import db
from app.mail import baskets
from app.mail.models import Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from app.mail.visibility import can_see
from tests.conftest import user_context

STATUSES = ["new", "to_qualify", "in_progress", "awaiting_opinion", "to_send", "closed"]


def _register_mixed_mail() -> list[int]:
    """Register mail of DMI-SSE-BPT over several statuses and due dates, some of it confidential; return the ids."""
    sejour_id = user_context("sejour").user_id
    renewal_id = user_context("renouvellement").user_id
    registered: list[int] = []
    today = today_in_paris()
    for number in range(24):
        confidential = number % 5 == 0
        assignee_id = sejour_id if number % 10 == 0 else None
        mail = register_mail(
            user_context("courrier"),
            Registration(
                mail_type="public_complaint", subject=f"Réclamation {number}",
                arrival_date=today - timedelta(days=1), handling_department="DMI-SSE-BPT",
                confidential=confidential, assignee_id=assignee_id,
                correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
            ),
        )
        # Equal due dates on purpose, so that the id decides the order. Every seventh mail has no due date.
        due_date = None if number % 7 == 0 else today + timedelta(days=number % 4)
        values = {"status": STATUSES[number % len(STATUSES)], "due_date": due_date}
        if confidential and assignee_id is None:
            # Confidential and assigned to an agent of another department: the rule hides it from sejour and chef.sejour.
            values["assignee_id"] = renewal_id
        db.session.execute(update(Mail).where(Mail.id == mail.id).values(**values))
        registered.append(mail.id)
    db.session.commit()
    return registered


def _sorted_page_ids(username: str, basket_id: str, page: int, page_size: int) -> list[int]:
    """Return the ids of one page from the single sorted statement, the reference form."""
    user = user_context(username)
    basket = current_configuration().baskets[basket_id]
    query = baskets.basket_query(basket, user)
    statement = baskets._ordered(select(Mail.id).where(query.condition()), basket)
    return list(db.session.execute(statement.limit(page_size).offset((page - 1) * page_size)).scalars())


@pytest.mark.parametrize("username", ["sejour", "chef.sejour", "admin"])
@pytest.mark.parametrize("basket_id", ["to_process", "my_department", "late", "due_soon"])
def test_merged_pages_match_sorted_pages(app_context, monkeypatch, username, basket_id):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("pages are read as merged ranges on PostgreSQL only")
    registered = _register_mixed_mail()
    user = user_context(username)
    hidden = {mail_id for mail_id in registered if not can_see(user, db.session.get(Mail, mail_id))}
    if username != "admin":
        assert hidden
    monkeypatch.setattr(baskets, "MERGED_PAGE_MIN_TOTAL", 0)
    configuration = current_configuration()
    basket = configuration.baskets[basket_id]
    query = baskets.basket_query(basket, user)
    assert baskets._merges_page_by_index_range(basket, query, 10, None)

    listed: list[int] = []
    for page in (1, 2, 3, 4, 5):
        result = baskets.basket_page(user, configuration, basket_id, page, 5)
        ids = [mail.id for mail in result.items]
        assert ids == _sorted_page_ids(username, basket_id, page, 5)
        listed.extend(ids)
    assert not set(listed) & hidden
    assert len(listed) == len(set(listed))


def test_small_basket_sorted_in_one_piece(app_context):
    user = user_context("sejour")
    basket = current_configuration().baskets["to_process"]
    query = baskets.basket_query(basket, user)
    assert not baskets._merges_page_by_index_range(basket, query, 50, baskets.MERGED_PAGE_MIN_TOTAL - 1)


def test_many_ranges_sorted_in_one_piece(app_context, monkeypatch):
    user = user_context("sejour")
    basket = current_configuration().baskets["to_process"]
    query = baskets.basket_query(basket, user)
    monkeypatch.setattr(baskets, "MERGED_PAGE_MAX_RANGES", len(query.departments) * len(query.statuses) - 1)
    assert not baskets._merges_page_by_index_range(basket, query, 50, None)


def test_direction_beyond_departments_sorted_in_one_piece(app_context):
    # chef.sejour's directorate contains departments outside his own, whose mail every range would test by the rule.
    user = user_context("chef.sejour")
    basket = current_configuration().baskets["my_direction"]
    query = baskets.basket_query(basket, user)
    assert set(query.departments) - user.scope_department_ids
    assert not baskets._merges_page_by_index_range(basket, query, 50, None)


def test_page_past_count_runs_no_page_query(app_context):
    registered = _register_mixed_mail()
    user = user_context("sejour")
    configuration = current_configuration()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        last = baskets.basket_page(user, configuration, "to_process", 1, 50)
        listed = len(statements)
        past = baskets.basket_page(user, configuration, "to_process", 2, 50)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    assert last.items
    assert set(mail.id for mail in last.items) <= set(registered)
    assert past.items == []
    assert any("ORDER BY mail.due_date" in statement for statement in statements[:listed])
    assert past.total == last.total
    page_queries = [statement for statement in statements[listed:] if "ORDER BY mail.due_date" in statement]
    assert page_queries == []


@pytest.mark.parametrize("path", [
    "/mail/list", "/mail/basket/to_process", "/api/mail/basket/to_process", "/notifications/",
    "/statistics/mail?indicator=received",
])
@pytest.mark.parametrize("page", ["99999999999999999999999", "-5", "0", "deux"])
def test_page_argument_out_of_range(client_as, path, page):
    separator = "&" if "?" in path else "?"
    response = client_as("chef.sejour").get(f"{path}{separator}page={page}")

    assert response.status_code == 200


@pytest.mark.parametrize("absent_user", ["99999999999999999999999", "²"])
def test_delegate_argument_out_of_range(client_as, absent_user):
    response = client_as("chef.sejour").get(f"/mail/basket/to_process?for={absent_user}")

    assert response.status_code == 200

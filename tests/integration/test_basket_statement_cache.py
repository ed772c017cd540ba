"""The per-process cache of basket statements: reused for an equal user context, rebuilt when an input changes.

The statements a basket page runs are kept per user, basket and day. A
change of the user's departments or rights, of the date or of the applied
configuration must give other statements, never the cached ones.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, select, update

from app.configuration.operations import MAIL_VIEW_MENU, current_configuration
from app.correspondents.operations import CorrespondentInput
from app.extensions import db
from app.mail import baskets
from app.mail.models import Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from app.organisation.models import Department, UserDepartment
from tests.conftest import confidential_for_sejour, user_context


@pytest.fixture(autouse=True)
def fresh_statements():
    baskets.forget_basket_statements()
    yield
    baskets.forget_basket_statements()


def _register_open_mail(department: str, subject: str) -> int:
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="public_complaint", subject=subject,
            arrival_date=today_in_paris() - timedelta(days=1), handling_department=department,
            correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
        ),
    )
    return mail.id


def _page_ids(user, basket_id: str = "to_process") -> set[int]:
    result = baskets.basket_page(user, current_configuration(), basket_id, 1, 50)
    return {mail.id for mail in result.items}


def test_statements_reused_for_equal_context(app_context):
    configuration = current_configuration()
    basket = configuration.baskets["to_process"]

    first = baskets._basket_statements(basket, user_context("sejour"), configuration)
    again = baskets._basket_statements(basket, user_context("sejour"), configuration)
    other_user = baskets._basket_statements(basket, user_context("renouvellement"), configuration)

    assert again is first
    assert other_user is not first


def test_read_all_granted_changes_page(app_context):
    mail_id = confidential_for_sejour("Signalement confidentiel du cache des corbeilles")
    db.session.commit()
    chef = user_context("chef.sejour")
    assert not chef.can("read_all")
    assert mail_id not in _page_ids(chef)

    with_read_all = dataclasses.replace(chef, permissions=chef.permissions | {"read_all"})

    assert mail_id in _page_ids(with_read_all)
    assert mail_id not in _page_ids(chef)


def test_membership_added_seen_at_next_request(app, client_as):
    with app.app_context():
        mail_id = _register_open_mail("DMI-SSE-BPT", "Demande de titre de séjour du cache")
        user_id = user_context("naturalisation").user_id
        department_id = db.session.execute(select(Department.id).where(Department.code == "DMI-SSE-BPT")).scalar_one()
    client = client_as("naturalisation")
    assert f'data-mail="{mail_id}"' not in client.get("/mail/basket/to_process").get_data(as_text=True)

    with app.app_context():
        db.session.add(UserDepartment(user_id=user_id, department_id=department_id, is_primary=False))
        db.session.commit()
    try:
        assert f'data-mail="{mail_id}"' in client.get("/mail/basket/to_process").get_data(as_text=True)
    finally:
        with app.app_context():
            db.session.execute(
                delete(UserDepartment).where(UserDepartment.user_id == user_id, UserDepartment.department_id == department_id)
            )
            db.session.commit()
    assert f'data-mail="{mail_id}"' not in client.get("/mail/basket/to_process").get_data(as_text=True)


def test_role_grant_seen_at_next_request(app, client_as):
    with app.app_context():
        mail_id = confidential_for_sejour("Signalement confidentiel du cache des rôles")
    client = client_as("chef.sejour")
    assert f'data-mail="{mail_id}"' not in client.get("/mail/basket/to_process").get_data(as_text=True)

    manager = app.appbuilder.sm
    with app.app_context():
        role = manager.find_role("manager")
        read_all = manager.find_permission_view_menu("can_read_all", MAIL_VIEW_MENU)
        assert read_all is not None
        manager.add_permission_role(role, read_all)
    try:
        assert f'data-mail="{mail_id}"' in client.get("/mail/basket/to_process").get_data(as_text=True)
    finally:
        with app.app_context():
            manager.del_permission_role(manager.find_role("manager"), manager.find_permission_view_menu("can_read_all", MAIL_VIEW_MENU))
    assert f'data-mail="{mail_id}"' not in client.get("/mail/basket/to_process").get_data(as_text=True)


def test_new_day_builds_new_statements(app_context, monkeypatch):
    configuration = current_configuration()
    basket = configuration.baskets["due_soon"]
    user = user_context("sejour")
    today = today_in_paris()
    monkeypatch.setattr(baskets, "_today", lambda: today)
    before = baskets._basket_statements(basket, user, configuration)

    monkeypatch.setattr(baskets, "_today", lambda: today + timedelta(days=30))
    after = baskets._basket_statements(basket, user, configuration)

    assert after is not before
    assert today + timedelta(days=30) in after.query.count_statement().compile().params.values()
    assert today + timedelta(days=30) not in before.query.count_statement().compile().params.values()


def test_new_configuration_empties_cache(app_context):
    configuration = current_configuration()
    basket = configuration.baskets["to_process"]
    user = user_context("sejour")
    before = baskets._basket_statements(basket, user, configuration)

    replaced = copy.copy(configuration)
    after = baskets._basket_statements(basket, user, replaced)

    assert after is not before
    assert baskets._basket_statements(basket, user, configuration) is not before


@pytest.mark.parametrize("basket_id", ["my_direction", "signature_book", "closed_recently"])
def test_clock_or_database_baskets_not_cached(app_context, basket_id):
    basket = current_configuration().baskets[basket_id]

    assert baskets._statement_key(basket, user_context("chef.sejour")) is None


def test_delegate_statements_not_cached(app_context):
    delegate = dataclasses.replace(user_context("naturalisation"), delegator_ids=(user_context("sejour").user_id,))
    basket = current_configuration().baskets["to_process"]

    assert baskets._statement_key(basket, delegate) is None
    assert baskets._statement_key(basket, user_context("naturalisation")) is not None


def test_least_recently_used_dropped(app_context, monkeypatch):
    monkeypatch.setattr(baskets, "STATEMENT_CACHE_MAX_ENTRIES", 2)
    configuration = current_configuration()
    basket = configuration.baskets["to_process"]
    sejour, renewal, naturalisation = (user_context(name) for name in ("sejour", "renouvellement", "naturalisation"))
    recently_used = baskets._basket_statements(basket, sejour, configuration)
    least_recently_used = baskets._basket_statements(basket, renewal, configuration)
    assert baskets._basket_statements(basket, sejour, configuration) is recently_used

    baskets._basket_statements(basket, naturalisation, configuration)

    assert baskets._basket_statements(basket, sejour, configuration) is recently_used
    assert baskets._basket_statements(basket, renewal, configuration) is not least_recently_used


def test_assignee_names_read_with_page(app_context):
    sejour, renewal = user_context("sejour"), user_context("renouvellement")
    first = _register_open_mail("DMI-SSE-BPT", "Demande attribuée à Zoé")
    second = _register_open_mail("DMI-SSE-BPT", "Demande attribuée à Gaël")
    db.session.execute(update(Mail).where(Mail.id == first).values(assignee_id=sejour.user_id))
    db.session.execute(update(Mail).where(Mail.id == second).values(assignee_id=renewal.user_id))
    db.session.commit()
    db.session.expunge_all()

    result = baskets.basket_page(user_context("chef.sejour"), current_configuration(), "to_process", 1, 50)

    assert result.assignee_names == {sejour.user_id: sejour.display_name, renewal.user_id: renewal.display_name}
    # "À traiter" has no department column, so the page reads no department.
    assert result.department_codes == {}


def test_department_codes_read_with_page(app_context):
    _register_open_mail("DMI-SSE-BPT", "Demande du bureau des titres")
    _register_open_mail("DMI-SSE-BRT", "Demande du bureau des étrangers")
    db.session.commit()
    configuration = current_configuration()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        result = baskets.basket_page(user_context("chef.sejour"), configuration, "my_direction", 1, 50)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    assert "department" in configuration.baskets["my_direction"].columns
    assert sorted(result.department_codes.values()) == ["DMI-SSE-BPT", "DMI-SSE-BRT"]
    # One statement reads the codes of the page. The others read the direction's tree.
    assert len([statement for statement in statements if "department.code" in statement]) == 1


def test_basket_count_form_follows_last_count(app_context, monkeypatch):
    for number in range(3):
        _register_open_mail("DMI-SSE-BPT", f"Demande {number}")
    confidential_for_sejour()
    db.session.commit()
    configuration = current_configuration()
    user = user_context("sejour")
    basket = configuration.baskets["my_department"]
    expected = baskets.count_basket(user, basket)
    assert expected >= 4
    counts: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement.lower():
            counts.append(statement.lower())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        # First count: the split form, which the statements object does not know to be small.
        monkeypatch.setattr(baskets, "ONE_SCAN_COUNT_MAX_TOTAL", expected + 1)
        assert baskets.basket_page(user, configuration, basket.id, 1, 50).total == expected
        # Known small now: one scan, the same count.
        assert baskets.basket_page(user, configuration, basket.id, 1, 50).total == expected
        # The basket grew past the bound at that count: back to the split form.
        monkeypatch.setattr(baskets, "ONE_SCAN_COUNT_MAX_TOTAL", expected)
        assert baskets.basket_page(user, configuration, basket.id, 1, 50).total == expected
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert [statement.count("count(") for statement in counts] == [2, 1, 2]

"""Where a basket query keeps confidential mail alone, the shorter rule selects what the whole rule selects.

basket_query() tests confidential mail with visible_mail_clause(confidential_only=True),
which leaves out the departments' branch. These tests compare every basket's
count and ids, for agents, a head of department, a delegate and the mail room,
with the basket's filters and the whole rule.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from app.absences.operations import declare_absence
from app.configuration.operations import current_configuration
from app.correspondents.operations import CorrespondentInput
from app.distribution.operations import OpinionTarget, add_copies, add_opinion_requests, department_ids_by_code
from app.extensions import db
from app.mail import baskets
from app.mail.models import Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import user_context

STATUSES = ["new", "to_qualify", "in_progress", "awaiting_opinion", "to_send", "closed"]
USERS = ["sejour", "chef.sejour", "naturalisation", "courrier", "renouvellement"]


def _register(number: int, confidential: bool, department: str = "DMI-SSE-BPT") -> Mail:
    today = today_in_paris()
    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="public_complaint", subject=f"Signalement {number}",
            arrival_date=today - timedelta(days=1), handling_department=department, confidential=confidential,
            correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
        ),
    )
    db.session.execute(
        update(Mail).where(Mail.id == mail.id).values(
            status=STATUSES[number % len(STATUSES)], due_date=today + timedelta(days=number % 5 - 2),
        )
    )
    return mail


def _register_mix() -> list[int]:
    """Register plain and confidential mail, the confidential one reaching users by every branch of the rule."""
    sejour = user_context("sejour").user_id
    head = user_context("chef.sejour").user_id
    renewal = user_context("renouvellement").user_id
    departments = department_ids_by_code(["DMI-SSE"])
    today = today_in_paris()
    registered = []
    for number in range(36):
        kind = number % 6
        mail = _register(number, confidential=kind != 0, department="DMI-SSE-BPT" if number % 4 else "DMI-SSE")
        if kind == 1:
            db.session.execute(update(Mail).where(Mail.id == mail.id).values(assignee_id=sejour))
        elif kind == 2:
            db.session.execute(update(Mail).where(Mail.id == mail.id).values(assignee_id=renewal))
            add_copies(mail, [sejour], [], None)
        elif kind == 3:
            add_copies(mail, [], [departments["DMI-SSE"]], None)
        elif kind == 4:
            add_opinion_requests(mail, [OpinionTarget(user_id=head, department_id=None, due_date=today)], None)
        # kind 5: confidential and listed nowhere, seen only by the mail room that registered it.
        registered.append(mail.id)
    db.session.commit()
    return registered


def test_confidential_rule_selects_as_whole_rule(app_context, monkeypatch):
    registered = _register_mix()
    today = today_in_paris()
    declare_absence(user_context("sejour"), today, today + timedelta(days=3), user_context("naturalisation").user_id)
    db.session.commit()
    # Pages of every size are read as merged ranges on PostgreSQL.
    monkeypatch.setattr(baskets, "MERGED_PAGE_MIN_TOTAL", 0)
    configuration = current_configuration()
    confidential_seen = 0
    for username in USERS:
        user = user_context(username)
        for basket in configuration.baskets.values():
            if not baskets.may_open_basket(basket, user):
                continue
            query = baskets.basket_query(basket, user)
            whole = select(Mail.id).where(*query.filters, query.rule, Mail.id.in_(registered))
            expected = set(db.session.execute(whole).scalars())
            ids = set(db.session.execute(select(Mail.id).where(query.condition(), Mail.id.in_(registered))).scalars())
            assert ids == expected, (username, basket.id)
            everything = db.session.execute(select(func.count()).select_from(Mail).where(*query.filters, query.rule))
            assert db.session.execute(query.count_statement()).scalar_one() == everything.scalar_one(), (
                username, basket.id,
            )
            page = baskets.basket_page(user, configuration, basket.id, 1, 100)
            assert {mail.id for mail in page.items} & set(registered) == expected, (username, basket.id)
            confidential_seen += sum(1 for mail in page.items if mail.confidential and mail.id in expected)
    # The mix must put confidential mail in baskets, or the comparison above would prove nothing.
    assert confidential_seen >= 20


@pytest.mark.parametrize("username", ["sejour", "chef.sejour"])
def test_confidential_rule_leaves_departments_out(app_context, username):
    user = user_context(username)
    query = baskets.basket_query(current_configuration().baskets["to_process"], user)
    whole = str(query.rule.compile(dialect=db.engine.dialect))
    shorter = str(query.confidential_rule.compile(dialect=db.engine.dialect))
    assert "handling_department_id" in whole
    assert "handling_department_id" not in shorter


def test_rule_tests_each_confidential_mail_alone(app_context):
    """PostgreSQL must not hash all the user's entries for a basket's few confidential mails (OFFSET 0)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the EXISTS form is PostgreSQL's concern")
    _register_mix()
    db.session.execute(text("ANALYZE"))
    user = user_context("chef.sejour")
    basket = current_configuration().baskets["due_soon"]
    query = baskets.basket_query(basket, user)
    statement = baskets.basket_page_statement(basket, query, 1, 50, 10)
    sql = str(statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    plan = "\n".join(db.session.execute(text("EXPLAIN " + sql)).scalars())
    assert "SubPlan" in plan
    assert "hashed SubPlan" not in plan

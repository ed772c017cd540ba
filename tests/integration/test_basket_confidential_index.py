"""The partial index of confidential mail (migration 0014) serves the confidential part of basket counts and pages.

Inside a user's departments, basket_page() counts and lists the confidential
mail apart and tests the visibility rule on it alone. On PostgreSQL that
part reads ix_mail_basket_confidential only when the planner can match the
query's condition to the index predicate, so these tests check the plan as
well as the ids and counts the index must not change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from app.configuration.operations import current_configuration
from app.correspondents.operations import CorrespondentInput
from app.extensions import db
from app.mail import baskets
from app.mail.models import Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from app.mail.visibility import can_see
from tests.conftest import user_context

INDEX = "ix_mail_basket_confidential"
OPEN_STATUSES = ["new", "to_qualify", "in_progress", "awaiting_opinion", "to_send"]


def _index_definition() -> str | None:
    return db.session.execute(
        text("SELECT indexdef FROM pg_indexes WHERE tablename = 'mail' AND indexname = :name"), {"name": INDEX}
    ).scalar_one_or_none()


def _register_confidential_mix(count: int) -> list[int]:
    """Register open mail of DMI-SSE-BPT, every third one confidential, half of those hidden from sejour."""
    sejour_id = user_context("sejour").user_id
    renewal_id = user_context("renouvellement").user_id
    registered: list[int] = []
    today = today_in_paris()
    for number in range(count):
        confidential = number % 3 == 0
        mail = register_mail(
            user_context("courrier"),
            Registration(
                mail_type="public_complaint", subject=f"Signalement {number}",
                arrival_date=today - timedelta(days=1), handling_department="DMI-SSE-BPT",
                confidential=confidential,
                correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
            ),
        )
        # Few distinct due dates, so that the id decides the order among equal ones.
        values: dict[str, object] = {
            "status": OPEN_STATUSES[number % len(OPEN_STATUSES)], "due_date": today + timedelta(days=number % 3),
        }
        if confidential:
            # Assigned to sejour, the rule shows it to him. Assigned to another department's agent, the rule hides it.
            values["assignee_id"] = sejour_id if number % 2 == 0 else renewal_id
        db.session.execute(update(Mail).where(Mail.id == mail.id).values(**values))
        registered.append(mail.id)
    db.session.commit()
    return registered


def _compiled(statement) -> str:
    return str(statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))


def _plan(statement) -> str:
    rows = db.session.execute(text("EXPLAIN " + _compiled(statement))).scalars()
    return "\n".join(rows)


def test_confidential_index_columns(app_context):
    if db.engine.dialect.name != "postgresql":
        # Every SQLite index ends with the rowid, mail.id, so ix_mail_basket_visibility covers that part there.
        indexes = db.session.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars()
        assert INDEX not in set(indexes)
        return
    definition = _index_definition()
    assert definition is not None
    columns = definition.split("(", 1)[1].split(")", 1)[0]
    assert columns == (
        "handling_department_id, status, due_date, id, confidential, created_by_id, assignee_id, initiating_department_id"
    )
    assert definition.endswith("WHERE (confidential IS TRUE)")


@pytest.mark.parametrize("basket_id", ["to_process", "to_qualify"])
def test_confidential_part_reads_partial_index(app_context, monkeypatch, basket_id):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the partial index exists on PostgreSQL only")
    registered = _register_confidential_mix(30)
    user = user_context("sejour")
    hidden = {mail_id for mail_id in registered if not can_see(user, db.session.get(Mail, mail_id))}
    assert hidden
    # A register of 30 mails would be read by a sequential scan. Without it, the planner must pick among the
    # indexes, and the confidential part must find the partial one, whose predicate its condition implies.
    db.session.execute(text("ANALYZE mail"))
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    db.session.execute(text("SET LOCAL enable_bitmapscan = off"))
    monkeypatch.setattr(baskets, "MERGED_PAGE_MIN_TOTAL", 0)
    configuration = current_configuration()
    basket = configuration.baskets[basket_id]
    query = baskets.basket_query(basket, user)

    count_plan = _plan(query.count_statement())
    assert f"Index Only Scan using {INDEX}" in count_plan
    page_plan = _plan(baskets.basket_page_statement(basket, query, 1, 5, None))
    assert f"Index Only Scan using {INDEX}" in page_plan

    in_basket = [
        mail_id for mail_id in registered
        if db.session.get(Mail, mail_id).status in basket.statuses and mail_id not in hidden
    ]
    first = baskets.basket_page(user, configuration, basket_id, 1, 5)
    assert first.total == len(in_basket)
    listed: list[int] = []
    for page in range(1, first.pages + 1):
        result = baskets.basket_page(user, configuration, basket_id, page, 5)
        reference = baskets._ordered(select(Mail.id).where(query.condition()), basket).limit(5).offset((page - 1) * 5)
        ids = [mail.id for mail in result.items]
        assert ids == list(db.session.execute(reference).scalars())
        listed.extend(ids)
    assert sorted(listed) == sorted(in_basket)

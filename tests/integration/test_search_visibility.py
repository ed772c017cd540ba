"""Search applies the visibility rule inside the query: results, totals and facets.

The engine filter (search_visibility_filter) is compared with the SQL rule
(visible_mail_clause) for every demo agent over mixed mail: departments,
confidential mail, copies to users and departments, and a delegation.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.absences.operations import declare_absence
from app.core.db import run_in_write_transaction
from app.distribution.operations import add_copies
from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import visible_mail_clause
from app.organisation.models import Department
from app.search.criteria import SearchRequest
from app.search.models import OutboxEvent
from app.search.operations import search
from tests.conftest import user_context
from tests.integration.search_support import (  # noqa: F401
    _complaint,
    _grant,
    _residence,
    index_all,
    organisation,
    person,
    register_corpus,
    search_backend,
    today_in_paris,
)

AGENTS = ["courrier", "sejour", "renouvellement", "chef.sejour", "naturalisation", "cabinet", "directeur.cabinet",
          "subventions", "manifestations", "legalite", "secretaire.general", "admin"]


def _department_id(code: str) -> int:
    return db.session.execute(select(Department.id).where(Department.code == code)).scalar_one()


def _mixed_register() -> dict[str, Mail]:
    mails = register_corpus()
    clerk = user_context("courrier")
    from app.mail.operations import register_mail

    sejour = user_context("sejour")
    mails["confidential"] = register_mail(clerk, _residence(
        "Signalement confidentiel demande", person("Martin", "Louise"), 1, confidential=True, assignee_id=sejour.user_id))
    mails["copied_user"] = register_mail(clerk, _grant("Demande de subvention copiée", organisation("Club de voile"), 1))
    mails["copied_department"] = register_mail(clerk, _complaint("Demande copiée au cabinet", person("Petit", "Jean"), 1))

    def copy() -> None:
        add_copies(db.session.merge(mails["copied_user"]), [user_context("legalite").user_id], [], clerk.user_id)
        add_copies(db.session.merge(mails["copied_department"]), [], [_department_id("CAB")], clerk.user_id)
        # The copy operations of the actions write these outbox rows; add_copies alone does not.
        for key in ("copied_user", "copied_department"):
            db.session.add(OutboxEvent(entity="mail", entity_id=mails[key].id, operation="upsert"))

    run_in_write_transaction(copy, "copy for the test")
    return mails


def _visible_ids(username: str) -> set[int]:
    user = user_context(username)
    return set(db.session.execute(select(Mail.id).where(visible_mail_clause(user))).scalars())


@pytest.mark.parametrize("username", AGENTS)
def test_search_results_equal_sql_rule(search_backend, username):  # noqa: F811
    _mixed_register()
    index_all(search_backend)
    result = search(user_context(username), SearchRequest(text="", page_size=100), backend=search_backend)

    assert {hit.mail_id for hit in result.hits} == _visible_ids(username)
    assert result.total == len(_visible_ids(username))


def test_agent_never_sees_other_department(search_backend):  # noqa: F811
    mails = _mixed_register()
    index_all(search_backend)
    visible = _visible_ids("subventions")
    result = search(user_context("subventions"), SearchRequest(text="demande", page_size=100), backend=search_backend)
    subsidies = {_department_id("DCPPAT-BSUB")}
    department_facet = {int(value) for value, _ in result.facets["department"]}
    type_facet = dict(result.facets["mail_type"])

    assert {hit.mail_id for hit in result.hits} <= visible
    assert mails["premier_titre"].id not in {hit.mail_id for hit in result.hits}
    assert result.total == len([hit for hit in result.hits])
    assert department_facet == subsidies
    assert "residence_permit_request" not in type_facet
    assert sum(type_facet.values()) == result.total


def test_confidential_mail_only_assignee(search_backend):  # noqa: F811
    mails = _mixed_register()
    index_all(search_backend)
    confidential = mails["confidential"].id

    def found(username: str) -> bool:
        result = search(user_context(username), SearchRequest(text="signalement"), backend=search_backend)
        return confidential in {hit.mail_id for hit in result.hits}

    assert found("sejour")
    assert not found("chef.sejour")
    assert not found("renouvellement")
    assert found("admin")


def test_delegate_sees_absent_agent_mail(search_backend):  # noqa: F811
    mails = _mixed_register()
    index_all(search_backend)
    today = today_in_paris()
    declare_absence(user_context("sejour"), today - timedelta(days=1), today + timedelta(days=3),
                    user_context("naturalisation").user_id)
    result = search(user_context("naturalisation"), SearchRequest(text="signalement"), backend=search_backend)

    assert mails["confidential"].id in {hit.mail_id for hit in result.hits}

"""Search behaviour on every backend: literal text, filters, facets, sort, pages, snippets, outbox."""

from __future__ import annotations

import copy
import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.attachments.operations import Upload
from app.extensions import db
from app.mail.operations import Registration, register_mail
from app.organisation.models import Department
from app.search.backends import BackendUnavailable
from app.search.criteria import SearchRequest
from app.search.indexer import drain, index_status, reindex
from app.search.mapping import index_definition
from app.search.models import OutboxEvent
from app.search.operations import search
from tests.conftest import user_context
from tests.integration.search_support import (  # noqa: F401
    SKIP_OPENSEARCH,
    _complaint,
    days_ago,
    drop_backend,
    index_all,
    make_backend,
    person,
    register_corpus,
    search_backend,
    today_in_paris,
)

SYNTAX_INPUTS = ["NOTRE DAME D OR", "AR/2026-001", "11/2025", '"arrêté du 3 mars', "dossier (suite", "ET OU NON", "NOT",
                 "préfet*", "a OR b AND", "title:(x", "\\", "'", "’", "*", "?", "~2", "[1 TO 5]", "{}", "&&", "||", "!",
                 "<script>", "' OR 1=1 --", "NEAR(a b)", "-", "\"", "^2", "/regex/", "é" * 300]


def _admin_search(backend, **criteria):
    return search(user_context("admin"), SearchRequest(**criteria), backend=backend)


def test_user_text_never_syntax(search_backend):  # noqa: F811
    register_corpus()
    index_all(search_backend)
    for text in SYNTAX_INPUTS:
        result = _admin_search(search_backend, text=text)
        assert result.total >= 0, text


def test_literal_reference_found(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    result = _admin_search(search_backend, text="AR/2026-001")

    assert [hit.mail_id for hit in result.hits] == [mails["reference"].id]


def test_filters_and_facets(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    everything = _admin_search(search_backend, text="", page_size=100)
    complaints = _admin_search(search_backend, text="", mail_types=["public_complaint"], page_size=100)
    recent = _admin_search(search_backend, text="", arrival_from=days_ago(3), arrival_to=days_ago(1), page_size=100)
    by_department = _admin_search(search_backend, text="", department="DMI", page_size=100)
    incoming = _admin_search(search_backend, text="", categories=["incoming"], statuses=["new"], page_size=100)

    assert everything.total == len(mails)
    assert dict(everything.facets["mail_type"])["public_complaint"] == 4
    assert sum(count for _, count in everything.facets["category"]) == len(mails)
    assert complaints.total == 4
    assert {hit.mail_type for hit in complaints.hits} == {"public_complaint"}
    assert {hit.arrival_date for hit in recent.hits} == {days_ago(3), days_ago(2), days_ago(1)}
    assert {hit.mail_id for hit in by_department.hits} == {mails[key].id for key in ("premier_titre", "renouvellement", "naturalisation")}
    assert incoming.total == len(mails)


def test_due_band_filter(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    today = today_in_paris()
    with_due = [mail for mail in mails.values() if mail.due_date is not None]
    overdue = _admin_search(search_backend, due_band="overdue", page_size=100)
    none = _admin_search(search_backend, due_band="none", page_size=100)

    assert {hit.mail_id for hit in overdue.hits} == {mail.id for mail in with_due if mail.due_date < today}
    assert {hit.mail_id for hit in none.hits} == {mail.id for mail in mails.values() if mail.due_date is None}


def test_sort_and_pages(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    newest = _admin_search(search_backend, sort="date_desc", page_size=5)
    oldest = _admin_search(search_backend, sort="date_asc", page_size=5)
    second = _admin_search(search_backend, sort="date_desc", page_size=5, page=2)
    last = _admin_search(search_backend, sort="date_desc", page_size=5, page=3)

    assert [hit.arrival_date for hit in newest.hits] == sorted((hit.arrival_date for hit in newest.hits), reverse=True)
    assert oldest.hits[0].mail_id == mails["premier_titre"].id
    assert not {hit.mail_id for hit in newest.hits} & {hit.mail_id for hit in second.hits}
    assert len(last.hits) == len(mails) - 10
    assert newest.page_count == 3


def test_snippet_escapes_markup(search_backend):  # noqa: F811
    clerk = user_context("courrier")
    register_mail(clerk, _complaint("<img src=x onerror=alert(document.domain)> Réclamation", person("<svg onload=alert(1)>"), 1))
    index_all(search_backend)
    result = _admin_search(search_backend, text="réclamation")
    snippet = str(result.hits[0].snippet)

    assert "<img" not in snippet
    assert "<svg" not in snippet
    assert "&gt;" in snippet
    assert "<mark>Réclamation</mark>" in snippet


def test_outbox_catches_up_after_backend_down(app_context, monkeypatch):
    from app.search.backends.cluster import cluster_backend
    from app.search.backends.embedded import EmbeddedBackend

    down = cluster_backend("opensearch", "http://127.0.0.1:9", "estafette-closed-port", timeout=2)
    clerk = user_context("courrier")
    mail = register_mail(clerk, _complaint("Réclamation pendant la panne", person("Durand"), 1))

    result = drain(down)
    pending = db.session.execute(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.processed_at.is_(None))).scalar()
    assert result.failed
    assert pending == 1
    with pytest.raises(BackendUnavailable):
        down.search(user_context("admin"), SearchRequest(text="panne"))

    embedded = EmbeddedBackend()
    assert not drain(embedded).failed
    found = _admin_search(embedded, text="panne")
    assert [hit.mail_id for hit in found.hits] == [mail.id]


def test_reindex_and_status(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    before = index_status(search_backend)
    indexed = reindex(search_backend)
    after = index_status(search_backend)

    assert before.missing == 0
    assert indexed == len(mails)
    assert after.indexed == len(mails)
    assert after.stale == 0


def test_attachment_text_searchable(search_backend):  # noqa: F811
    from app.demo.letters import render_letter_pdf

    pdf = render_letter_pdf(
        {"category": "incoming", "subject": "Courrier", "letter_date": days_ago(3),
         "body_paragraphs": ["Je sollicite le raccordement de ma parcelle cadastrée au réseau d'assainissement."]},
        {"kind": "person", "civility": "M.", "first_name": "Jean", "last_name": "Valjean", "organisation": None,
         "address": "1 rue Haute", "postcode": "75001", "city": "Paris", "email": None, "phone": None},
    )
    clerk = user_context("courrier")
    mail = register_mail(clerk, Registration(mail_type="public_complaint", subject="Courrier sans objet précis",
                                             arrival_date=days_ago(1), correspondent=person("Valjean", "Jean"),
                                             uploads=[Upload(io.BytesIO(pdf), "lettre.pdf", kind="letter")]))
    index_all(search_backend)
    result = _admin_search(search_backend, text="assainissement")

    assert [hit.mail_id for hit in result.hits] == [mail.id]
    assert "<mark>" in str(result.hits[0].snippet)


def test_today_changes_due_band(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    first_due = min(mail.due_date for mail in mails.values() if mail.due_date)
    later = search(user_context("admin"), SearchRequest(due_band="overdue", page_size=100), backend=search_backend,
                   today=first_due + timedelta(days=1))

    assert later.total >= 1


def test_custom_fields_keep_mapping_bounded(search_backend):  # noqa: F811
    from app.search.documents import build_document

    mails = register_corpus()
    documents = []
    for number, mail in enumerate(mails.values()):
        document = build_document(mail)
        # 100 distinct field names per mail, and "date_fin" a date in one and free text in another.
        document.custom_fields = [(f"type_{number}.champ_{index}", f"valeur {index}") for index in range(100)]
        document.custom_fields.append(("date_fin", "2026-12-31" if number % 2 else "jusqu'à la levée du péril"))
        documents.append(document)
    from app.core.db import run_in_write_transaction

    if search_backend.in_database:
        run_in_write_transaction(lambda: search_backend.write(documents, []), "index test documents")
    else:
        search_backend.write(documents, [])
    found = _admin_search(search_backend, text="levée du péril", page_size=100)

    assert search_backend.count() == len(mails)
    assert found.total == len([number for number in range(len(mails)) if number % 2 == 0])
    if search_backend.name == "opensearch":
        mapping = search_backend.adapter.client.indices.get_mapping(index=search_backend.alias)
        properties = next(iter(mapping.values()))["mappings"]["properties"]
        assert set(properties["custom_fields"]["properties"]) == {"key", "value"}


def test_facet_ignores_own_filter(search_backend):  # noqa: F811
    register_corpus()
    index_all(search_backend)
    everything = _admin_search(search_backend, page_size=100)
    complaints = _admin_search(search_backend, mail_types=["public_complaint"], page_size=100)
    new_complaints = _admin_search(search_backend, mail_types=["public_complaint"], statuses=["new"], page_size=100)
    by_department = _admin_search(search_backend, department="DMI", page_size=100)

    assert complaints.total == 4
    assert dict(complaints.facets["mail_type"]) == dict(everything.facets["mail_type"])
    assert sum(count for _, count in complaints.facets["category"]) == 4
    assert sum(count for _, count in complaints.facets["status"]) == 4
    assert new_complaints.total == 4
    assert dict(new_complaints.facets["status"]) == dict(complaints.facets["status"])
    assert dict(new_complaints.facets["mail_type"]) == dict(everything.facets["mail_type"])
    assert by_department.total == 3
    assert dict(by_department.facets["department"]) == dict(everything.facets["department"])
    assert sum(count for _, count in by_department.facets["mail_type"]) == 3


def test_facet_counts_stay_visible_only(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    agent = user_context("sejour")
    seen = search(agent, SearchRequest(page_size=100), backend=search_backend)
    filtered = search(agent, SearchRequest(mail_types=["residence_permit_request"], page_size=100), backend=search_backend)
    other_types = {mail.mail_type for mail in mails.values()} - {hit.mail_type for hit in seen.hits}

    assert 0 < seen.total < len(mails)
    assert other_types
    assert dict(filtered.facets["mail_type"]) == dict(seen.facets["mail_type"])
    assert not other_types & {value for value, _ in filtered.facets["mail_type"]}
    assert sum(count for _, count in filtered.facets["mail_type"]) == seen.total


@SKIP_OPENSEARCH
def test_outdated_index_refused_until_reindex(app_context):
    backend = make_backend("opensearch")
    try:
        outdated = copy.deepcopy(index_definition())
        del outdated["mappings"]["_meta"]
        concrete = f"{backend.alias}-outdated"
        backend.adapter.create_index(concrete, outdated)
        backend.adapter.update_aliases([{"add": {"index": concrete, "alias": backend.alias}}])
        mail = register_corpus()["naturalisation"]

        with pytest.raises(BackendUnavailable, match="flask search reindex"):
            backend.search(user_context("admin"), SearchRequest(text="naturalisation"))
        reindex(backend)
        result = backend.search(user_context("admin"), SearchRequest(text="naturalisation"))

        assert backend.adapter.alias_targets(backend.alias) != [concrete]
        assert mail.id in [hit.mail_id for hit in result.hits]
    finally:
        drop_backend(backend)


def test_department_facet_counts_sub_departments(search_backend):  # noqa: F811
    register_corpus()
    register_mail(user_context("courrier"), _complaint("Accueil des étrangers : attente au guichet", person("Martin"), 2,
                                                       handling_department="DMI-SSE"))
    index_all(search_backend)
    codes = {str(row.id): row.code for row in db.session.execute(select(Department.id, Department.code))}

    facet = dict(_admin_search(search_backend, page_size=100).facets["department"])

    assert facet[next(key for key, code in codes.items() if code == "DMI-SSE")] > 1
    for value, count in facet.items():
        # The facet's link filters on the department with its sub-departments.
        assert _admin_search(search_backend, department=codes[value], page_size=100).total == count, codes[value]


def test_department_facet_of_one_department_reads_nothing(app_context):
    from sqlalchemy import event

    from app.search.criteria import department_facet

    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        single = department_facet({"7": 1}, 10)
        empty = department_facet({}, 10)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    assert single == [("7", 1)]
    assert empty == []
    assert statements == []

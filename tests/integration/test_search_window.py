"""Searches past EXACT_LIMIT matches: every backend covers the same window of newest matches.

EXACT_LIMIT is lowered to 5 for a register of 14 matching mails. Each result
is checked against the same rule computed here in Python: the 5 newest visible
matches by mail id (the 5 oldest for the date_asc sort). A facet that is also
a filter counts its own window, taken under the other filters.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import can_see
from app.search import criteria
from app.search.backends import cluster, embedded
from app.search.criteria import FACETS, SearchRequest, SearchResult
from app.search.indexer import reindex
from app.search.operations import search
from tests.conftest import user_context
from tests.integration.search_support import (  # noqa: F401
    SKIP_OPENSEARCH,
    Letter,
    _complaint,
    _grant,
    _residence,
    drop_backend,
    index_all,
    make_backend,
    organisation,
    person,
    register_corpus,
    search_backend,
)

LIMIT = 5
WORD = "dérogation"
# Distinct names, because registering a correspondent close to an existing one is rejected.
SURNAMES = ["Arnaud", "Barbier", "Chevalier", "Delmas", "Escoffier", "Fabre", "Guillot", "Hamon", "Imbert",
            "Joly", "Klein", "Lacroix", "Marchand", "Noiret", "Olivier", "Perrin", "Quentin"]


def _lower_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (criteria, embedded, cluster):
        monkeypatch.setattr(module, "EXACT_LIMIT", LIMIT)


def _register_window_corpus() -> list[Mail]:
    """Register 14 mails with WORD of three types, arrival dates out of registration order, and 3 without it."""
    makers = [
        lambda name, days: _residence(f"Demande de {WORD} pour un titre de séjour", person(name), days),
        lambda name, days: _complaint(f"Réclamation sur une {WORD} refusée", person(name), days),
        lambda name, days: _grant(f"Subvention avec {WORD} au règlement", organisation(f"Association {name}"), days),
    ]
    letters = [
        Letter(f"match_{number}", makers[number % 3](name, (number * 7) % 11))
        for number, name in enumerate(SURNAMES[:14])
    ]
    letters += [
        Letter(f"other_{number}", _complaint("Nuisances sonores", person(name), number))
        for number, name in enumerate(SURNAMES[14:])
    ]
    mails = register_corpus(letters)
    return [mails[f"match_{number}"] for number in range(14)]


def _facet_value(mail: Mail, name: str) -> str:
    if name == "department":
        return str(mail.handling_department_id)
    return str(getattr(mail, name))


def _window(mails: list[Mail], newest_first: bool) -> tuple[list[Mail], bool]:
    """Return the EXACT_LIMIT newest (or oldest) of ``mails`` by id, and whether they are all of them."""
    ordered = sorted(mails, key=lambda mail: mail.id, reverse=newest_first)
    return ordered[:LIMIT], len(ordered) <= LIMIT


def _expected(user_name: str, matches: list[Mail], request: SearchRequest) -> dict[str, Any]:
    """Compute the total, the page and the facets of ``request`` by the window rule, in Python."""
    user = user_context(user_name)
    visible = [mail for mail in matches if can_see(user, mail)]
    facet_filters = {
        name: set(values)
        for name, values in (("mail_type", request.mail_types), ("category", request.categories), ("status", request.statuses))
        if values
    }

    def passes(mail: Mail, ignored: str | None = None) -> bool:
        return all(getattr(mail, name) in values for name, values in facet_filters.items() if name != ignored)

    newest_first = request.sort != "date_asc"
    window, complete = _window([mail for mail in visible if passes(mail)], newest_first)
    facets_complete = complete
    facets: dict[str, dict[str, int]] = {}
    for name in FACETS:
        facet_window = window
        if name in facet_filters:
            facet_window, facet_complete = _window([mail for mail in visible if passes(mail, name)], newest_first)
            facets_complete = facets_complete and facet_complete
        facets[name] = dict(Counter(_facet_value(mail, name) for mail in facet_window))
    ordered = sorted(window, key=lambda mail: (mail.arrival_date, mail.id), reverse=request.sort != "date_asc")
    page = ordered[request.offset:request.offset + request.page_size]
    return {
        "total": len(window) if complete else LIMIT,
        "total_is_exact": complete,
        "facets_are_exact": facets_complete,
        "page": [mail.id for mail in page],
        "facets": facets,
    }


def _observed(result: SearchResult) -> dict[str, Any]:
    return {
        "total": result.total,
        "total_is_exact": result.total_is_exact,
        "facets_are_exact": result.facets_are_exact,
        "page": [hit.mail_id for hit in result.hits],
        "facets": {name: dict(result.facets[name]) for name in FACETS},
    }


CASES = [
    ("admin", SearchRequest(text=WORD, sort="date_desc", page_size=3)),
    ("admin", SearchRequest(text=WORD, sort="date_desc", page_size=3, page=2)),
    ("admin", SearchRequest(text=WORD, sort="date_asc", page_size=10)),
    ("admin", SearchRequest(text="", sort="date_desc", page_size=10)),
    ("admin", SearchRequest(text=WORD, mail_types=["public_complaint"], sort="date_desc", page_size=10)),
    ("admin", SearchRequest(text=WORD, mail_types=["grant_request", "public_complaint"], statuses=["new"],
                            sort="date_asc", page_size=10)),
    ("admin", SearchRequest(text=WORD, mail_types=["no_such_type"], sort="date_desc", page_size=10)),
    ("sejour", SearchRequest(text=WORD, sort="date_desc", page_size=10)),
    ("sejour", SearchRequest(text=WORD, mail_types=["residence_permit_request"], sort="date_asc", page_size=10)),
    # One filter that is also a facet: its window continues the facet's window.
    ("admin", SearchRequest(text=WORD, statuses=["new"], sort="date_desc", page_size=10)),
    ("admin", SearchRequest(text=WORD, mail_types=["grant_request"], sort="date_asc", page_size=10)),
    ("admin", SearchRequest(text="", mail_types=["grant_request"], sort="date_desc", page_size=10)),
    ("sejour", SearchRequest(text=WORD, mail_types=["public_complaint"], page_size=10)),
]


def _case_id(case: tuple[str, SearchRequest]) -> str:
    user_name, request = case
    filters = "+".join([*request.mail_types, *request.statuses]) or "any"
    return f"{user_name}-{request.text or 'all'}-{request.sort}-p{request.page}-{filters}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_window_matches_python_rule(search_backend, monkeypatch, case):  # noqa: F811
    user_name, request = case
    matches = _register_window_corpus()
    index_all(search_backend)
    _lower_limit(monkeypatch)
    if not request.text:
        matches = list(db.session.execute(select(Mail)).scalars())
    result = search(user_context(user_name), request, backend=search_backend)

    expected = _expected(user_name, matches, request)
    observed = _observed(result)
    assert observed["total_is_exact"] == expected["total_is_exact"]
    assert observed["facets_are_exact"] == expected["facets_are_exact"]
    assert observed["total"] == expected["total"]
    assert observed["page"] == expected["page"]
    assert observed["facets"] == expected["facets"]


@SKIP_OPENSEARCH
def test_window_same_on_both_backends(app_context, monkeypatch):
    """Compare the embedded backend and OpenSearch on one register, relevance sort included."""
    matches = _register_window_corpus()
    everything = list(db.session.execute(select(Mail)).scalars())
    embedded_backend = make_backend("embedded")
    opensearch_backend = make_backend("opensearch")
    try:
        index_all(embedded_backend)
        # The outbox is drained already, so the node gets every mail from a rebuild.
        assert reindex(opensearch_backend) == 17
        _lower_limit(monkeypatch)
        for user_name, request in [*CASES, ("admin", SearchRequest(text=WORD, page_size=10))]:
            user = user_context(user_name)
            from_embedded = _observed(search(user, request, backend=embedded_backend))
            from_opensearch = _observed(search(user, request, backend=opensearch_backend))
            expected = _expected(user_name, matches if request.text else everything, request)
            if request.sort == "relevance":
                # The two engines score differently, so only the window is compared, not its order.
                from_embedded["page"] = sorted(from_embedded["page"])
                from_opensearch["page"] = sorted(from_opensearch["page"])
                expected["page"] = sorted(expected["page"])

            assert from_embedded == expected, _case_id((user_name, request))
            assert from_opensearch == from_embedded, _case_id((user_name, request))
    finally:
        drop_backend(opensearch_backend)


PHRASE = f"une {WORD} refusée"


@pytest.mark.parametrize(
    ("reads_newest_first", "in_ranges"), [(True, False), (False, False), (False, True)],
    ids=["newest-first", "index-first", "index-first-in-ranges"],
)
def test_window_postgresql_reading_paths(app_context, monkeypatch, reads_newest_first, in_ranges):
    """Check the ways PostgreSQL reads a text match, forced in turn, against the window rule.

    Which way a search takes depends on the planner's estimate of the matches, so
    the small register here would only ever take the index-first one in one statement.
    Ranges of ids are forced by an estimate far above the matches: the first range then
    covers only EXACT_LIMIT + 1 ids, and each next one four times more.
    """
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the choice between the reading paths exists only on PostgreSQL")
    matches = _register_window_corpus()
    backend = make_backend("embedded")
    index_all(backend)
    _lower_limit(monkeypatch)
    monkeypatch.setattr(embedded.EmbeddedBackend, "_reads_newest_first",
                        lambda _self, _matches, _limit: reads_newest_first)
    if in_ranges:
        monkeypatch.setattr(embedded, "RANGED_MATCHES", 0)
        monkeypatch.setattr(embedded.EmbeddedBackend, "_estimated_matches", staticmethod(lambda _expression: 10**9))
    ranges: list[tuple[int | None, int | None]] = []
    read_in_ranges = embedded.EmbeddedBackend._ranged_text_rows

    def counting_ranges(backend, ranged, limit):
        def statement(above, up_to):
            ranges.append((above, up_to))
            return ranged.statement(above, up_to)

        return read_in_ranges(backend, ranged._replace(statement=statement), limit)

    monkeypatch.setattr(embedded.EmbeddedBackend, "_ranged_text_rows", counting_ranges)
    # Only the 5 complaints hold the phrase, so its window is complete: the cut past
    # EXACT_LIMIT is checked by the one-word cases.
    phrase_matches = [mail for mail in matches if mail.mail_type == "public_complaint"]
    cases = [(user_name, request, matches) for user_name, request in CASES if request.text]
    cases += [
        ("admin", SearchRequest(text=f'"{PHRASE}"', sort="date_desc", page_size=10), phrase_matches),
        ("admin", SearchRequest(text=f'"{PHRASE}"', sort="date_asc", page_size=10), phrase_matches),
        # Both words are in every residence permit request, but never in this order.
        ("admin", SearchRequest(text=f'"{WORD} demande"', sort="date_desc", page_size=10), []),
    ]
    assert len(phrase_matches) == LIMIT

    for user_name, request, case_matches in cases:
        result = search(user_context(user_name), request, backend=backend)
        expected = _expected(user_name, case_matches, request)
        observed = _observed(result)
        case = _case_id((user_name, request))
        assert observed["total_is_exact"] == expected["total_is_exact"], case
        assert observed["facets_are_exact"] == expected["facets_are_exact"], case
        assert observed["total"] == expected["total"], case
        assert observed["page"] == expected["page"], case
        assert observed["facets"] == expected["facets"], case
    # The ranges were read in several statements, or the case proves nothing about them.
    assert (len(ranges) > len(cases)) if in_ranges else not ranges


def test_filtered_window_uses_kept_share(app_context, monkeypatch):
    """The window narrowed by one facet filter counts on the share of the wider window that passes it.

    A word found in many mails is read newest first, but under a filter that keeps a
    third of them its kept matches are three times rarer, which can make reading every
    match through the index cheaper.
    """
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the choice between the reading paths exists only on PostgreSQL")
    _register_window_corpus()
    backend = make_backend("embedded")
    index_all(backend)
    _lower_limit(monkeypatch)
    monkeypatch.setattr(embedded.EmbeddedBackend, "_estimated_matches", staticmethod(lambda _expression: 9000))
    judged: list[int] = []
    monkeypatch.setattr(embedded.EmbeddedBackend, "_reads_newest_first",
                        lambda _self, matches, _limit: judged.append(matches) or True)

    search(user_context("admin"), SearchRequest(text=WORD, mail_types=["public_complaint"]), backend=backend)

    wider, narrowed = judged
    assert wider == 9000
    assert 0 < narrowed < wider

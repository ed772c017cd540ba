"""The one query builder for Elasticsearch and OpenSearch: same body for both clients.

User text goes only into ``match`` and ``match_phrase`` queries, which
analyse it as text and have no syntax, so nothing typed can fail to parse.
Visibility is a filter of the same query, so totals and facets count only
mail the user may see.

Past EXACT_LIMIT matches the cluster follows the rule of the embedded
backend: the page, the ranking and the facets cover the EXACT_LIMIT newest
matches (by mail id, oldest for the date_asc sort). A probe per window
(``window_probe_body``) finds the id of its last mail, and the search body
restricts each window to the ids from there on (``Windows``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.search.analysis import ParsedQuery
from app.search.criteria import ResolvedFilters, SearchRequest

FACET_FIELDS = {
    "mail_type": "mail_type",
    "category": "category",
    "status": "status",
    "department": "handling_department_id",
}
FACET_SIZE = 20
# The department facet adds each department's sub-departments to its count (criteria.department_facet),
# so it needs the count of every department, not of the largest only.
FACET_BUCKETS = {"department": 1000}
# Where snippets are taken from, in order of preference.
HIGHLIGHT_FIELDS = ("subject", "correspondents", "custom_fields.value", "notes", "attachment_names", "attachment_text")
SOURCE_FIELDS = ["chrono", "subject", "arrival_date", "status", "mail_type"]
CHRONO_BOOST = 1000.0
# The numeric mail id of the index (mapping.py), which orders the windows past EXACT_LIMIT.
MAIL_ID_FIELD = "mail_id"


@dataclass(frozen=True)
class Windows:
    """The mail id where each window past EXACT_LIMIT ends; None for a window with all its matches.

    ``hits`` is the window of the page and of the facets that are not filters,
    ``facets`` the own window of each facet that is also a filter.
    """

    newest_first: bool = True
    hits: int | None = None
    facets: dict[str, int | None] = field(default_factory=dict)

    def range_clause(self, boundary: int) -> dict[str, Any]:
        """Return the filter that keeps the mails of a window ending at mail id ``boundary``."""
        return {"range": {MAIL_ID_FIELD: {"gte" if self.newest_first else "lte": boundary}}}

    def union_boundary(self) -> int | None:
        """Return the boundary of the union of all windows, or None when one of them is not cut."""
        boundaries = [self.hits, *self.facets.values()]
        if any(boundary is None for boundary in boundaries):
            return None
        cut = [boundary for boundary in boundaries if boundary is not None]
        return min(cut) if self.newest_first else max(cut)


def words_query(parsed: ParsedQuery) -> dict[str, Any] | None:
    """Return the query of the words and phrases of the user's text, or None when there are none."""
    clauses: list[dict[str, Any]] = []
    if parsed.raw_words:
        words = " ".join(parsed.raw_words)
        clauses.append({"match": {"all_text": {"query": words, "operator": "and"}}})
    for phrase in parsed.raw_phrases:
        clauses.append({"match_phrase": {"all_text": {"query": phrase}}})
    if not clauses:
        return None
    return {"bool": {"must": clauses, "should": [{"match": {"subject": {"query": parsed.text, "boost": 2.0}}}]}}


def chrono_clauses(parsed: ParsedQuery) -> list[dict[str, Any]]:
    """Return the exact registration number queries of the user's text, none when it has no number."""
    if parsed.chrono_key is None:
        return []
    return [
        {"term": {"chrono_key": {"value": parsed.chrono_key, "boost": CHRONO_BOOST}}},
        {"term": {"chrono_tail": {"value": parsed.chrono_key, "boost": CHRONO_BOOST}}},
    ]


def text_query(parsed: ParsedQuery) -> dict[str, Any] | None:
    """Return the query part of the user's text, or None when there is none."""
    text = words_query(parsed)
    exact = chrono_clauses(parsed)
    if not exact:
        return text
    return {"bool": {"should": exact + ([text] if text else []), "minimum_should_match": 1}}


def windowed_query(parsed: ParsedQuery, text: str) -> dict[str, Any] | None:
    """Return the query whose matches the windows are cut from, or None when no window can be cut.

    The embedded backend counts a registration number apart from the words and
    keeps every mail with that number, so only the words' matches, or every
    mail when the text is empty, are cut to EXACT_LIMIT.
    """
    if parsed.chrono_key is not None:
        # NOTE: a registration number is assumed to match at most EXACT_LIMIT mails, which
        # the embedded backend checks and the cluster does not.
        return words_query(parsed)
    query = text_query(parsed)
    if query is None and text.strip():
        return None
    return query or {"match_all": {}}


def window_probe_body(query: dict[str, Any], filters: list[dict[str, Any]], newest_first: bool,
                      exact_limit: int) -> dict[str, Any]:
    """Return a search for the mail at position ``exact_limit`` of a window, newest first (oldest for date_asc).

    Its total, counted up to ``exact_limit + 1``, shows whether the window is cut,
    and the sort value of its one hit is the mail id where the window ends. It
    has no scores, aggregations or highlighting, so the node stops early.
    """
    return {
        "query": {"bool": {"filter": [query, *filters]}},
        "sort": [{MAIL_ID_FIELD: "desc" if newest_first else "asc"}],
        "from": exact_limit - 1,
        "size": 1,
        "track_total_hits": exact_limit + 1,
        "_source": False,
    }


def filter_clauses(request: SearchRequest, filters: ResolvedFilters, visibility: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return the filters that are not facets: visibility, arrival dates and due-date band."""
    clauses: list[dict[str, Any]] = []
    if visibility is not None:
        clauses.append(visibility)
    arrival = {key: value.isoformat() for key, value in (("gte", request.arrival_from), ("lte", request.arrival_to)) if value}
    if arrival:
        clauses.append({"range": {"arrival_date": arrival}})
    due = {key: value.isoformat() for key, value in (("gte", filters.due_from), ("lte", filters.due_to)) if value}
    if due:
        clauses.append({"range": {"due_date": due}})
    if filters.due_missing:
        clauses.append({"bool": {"must_not": [{"exists": {"field": "due_date"}}]}})
    if filters.open_only:
        clauses.append({"term": {"closed": False}})
    return clauses


def facet_clauses(request: SearchRequest, filters: ResolvedFilters) -> dict[str, dict[str, Any]]:
    """Return the filters that are also facets, by facet name."""
    clauses: dict[str, dict[str, Any]] = {}
    if request.mail_types:
        clauses["mail_type"] = {"terms": {"mail_type": request.mail_types}}
    if request.categories:
        clauses["category"] = {"terms": {"category": request.categories}}
    if request.statuses:
        clauses["status"] = {"terms": {"status": request.statuses}}
    if filters.department_ids is not None:
        clauses["department"] = {"terms": {"handling_department_id": filters.department_ids}}
    return clauses


def facet_aggregations(facet_filters: dict[str, dict[str, Any]],
                       window_filters: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return the facet aggregations, each facet counted under every facet filter but its own.

    The query contains the other filters and the visibility rule, and the facet
    filters go to ``post_filter``: the hits and the total obey all of them,
    while a facet keeps offering its other values with their counts.

    A facet that no other facet filter applies to is a plain ``terms``
    aggregation named after the facet. Facets under the same set of other
    filters share one ``filter`` aggregation, named by ``_group_name``, with
    their ``terms`` aggregations inside it. So the node tests that set once per
    matching mail rather than once per facet, and adds no filter step when
    there is nothing to filter. ``facet_buckets`` reads both layouts back.

    ``window_filters`` maps a facet to the filter of its window past
    EXACT_LIMIT, when the query does not cut it already. Facets under the same
    filters have the same window, so the window filter joins their group.
    """
    window_filters = window_filters or {}
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in FACET_FIELDS:
        groups.setdefault(tuple(key for key in facet_filters if key != name), []).append(name)
    aggregations: dict[str, Any] = {}
    for filtered_by, names in groups.items():
        terms = {
            name: {"terms": {"field": FACET_FIELDS[name], "size": FACET_BUCKETS.get(name, FACET_SIZE)}} for name in names
        }
        clauses = [facet_filters[key] for key in filtered_by]
        window = window_filters.get(names[0])
        if window is not None:
            clauses.append(window)
        if not clauses:
            aggregations.update(terms)
            continue
        aggregations[_group_name(filtered_by, window is not None)] = {
            "filter": {"bool": {"filter": clauses}},
            "aggs": terms,
        }
    return aggregations


def _group_name(filtered_by: tuple[str, ...], windowed: bool = False) -> str:
    return "filtered_by_" + "_and_".join([*filtered_by, *(["window"] if windowed else [])])


def facet_buckets(aggregations: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Return the ``terms`` buckets of each facet from the aggregations of a response, by facet name."""
    buckets: dict[str, list[dict[str, Any]]] = {}
    for name, aggregation in aggregations.items():
        if name in FACET_FIELDS:
            buckets[name] = aggregation["buckets"]
            continue
        for facet in FACET_FIELDS:
            if facet in aggregation:
                buckets[facet] = aggregation[facet]["buckets"]
    return buckets


def sort_clause(request: SearchRequest, has_text: bool) -> list[Any]:
    if request.sort == "date_asc":
        return [{"arrival_date": "asc"}, {"chrono": "asc"}]
    if request.sort == "date_desc" or not has_text:
        return [{"arrival_date": "desc"}, {"chrono": "desc"}]
    return ["_score", {"arrival_date": "desc"}, {"chrono": "desc"}]


def build_search_body(request: SearchRequest, parsed: ParsedQuery, filters: ResolvedFilters,
                      visibility: dict[str, Any] | None, windows: Windows | None = None) -> dict[str, Any]:
    """Return the search request body: query, filters, facets, highlighting, sort and page.

    Without ``windows``, or with windows that are not cut, the body covers every
    match and counts the total exactly. With a cut window, the page and each
    facet cover their window only, and the total is not counted.
    """
    query = text_query(parsed)
    if query is None and request.text.strip():
        # Text without any searchable word matches nothing, as in the embedded backend.
        query = {"match_none": {}}
    facet_filters = facet_clauses(request, filters)
    query_filters = filter_clauses(request, filters, visibility)
    hit_filters = list(facet_filters.values())
    window_filters: dict[str, dict[str, Any]] = {}
    cut = windows is not None and windows.hits is not None
    if windows is not None:
        # The query reads the union of the windows, and each window then filters its own part.
        union = windows.union_boundary()
        if union is not None:
            query_filters.append(_window_clause(windows, union, parsed))
        if windows.hits is not None and windows.hits != union:
            hit_filters.append(_window_clause(windows, windows.hits, parsed))
        for name in FACET_FIELDS:
            boundary = windows.facets.get(name) if name in facet_filters else windows.hits
            if boundary is not None and boundary != union:
                window_filters[name] = _window_clause(windows, boundary, parsed)
    body: dict[str, Any] = {
        "query": {"bool": {"must": [query or {"match_all": {}}], "filter": query_filters}},
        "aggs": facet_aggregations(facet_filters, window_filters),
        "highlight": {
            # HTML encoding escapes the stored text around the tags: markup in a subject stays text.
            "encoder": "html",
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "require_field_match": False,
            "fields": {name: {"fragment_size": 200, "number_of_fragments": 1} for name in HIGHLIGHT_FIELDS},
        },
        "sort": sort_clause(request, query is not None),
        "from": request.offset,
        "size": request.page_size,
        # Past EXACT_LIMIT the total is EXACT_LIMIT by rule, and counting the window would cost a pass over it.
        "track_total_hits": not cut,
        "_source": SOURCE_FIELDS,
    }
    if hit_filters:
        body["post_filter"] = {"bool": {"filter": hit_filters}}
    return body


def _window_clause(windows: Windows, boundary: int, parsed: ParsedQuery) -> dict[str, Any]:
    """Return the filter of a window ending at ``boundary``; a mail with the searched registration number stays in."""
    clause = windows.range_clause(boundary)
    exact = chrono_clauses(parsed)
    if not exact:
        return clause
    return {"bool": {"should": [clause, *exact], "minimum_should_match": 1}}

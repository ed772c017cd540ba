"""The one query builder for Elasticsearch and OpenSearch: same body for both clients.

User text goes only into ``match`` and ``match_phrase`` queries, which
analyse it as text and have no syntax, so nothing typed can fail to parse.
Visibility is a filter of the same query, so totals and facets count only
mail the user may see.
"""

from __future__ import annotations

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
# Where snippets are taken from, in order of preference.
HIGHLIGHT_FIELDS = ("subject", "correspondents", "custom_fields.value", "notes", "attachment_names", "attachment_text")
SOURCE_FIELDS = ["chrono", "subject", "arrival_date", "status", "mail_type"]
CHRONO_BOOST = 1000.0


def text_query(parsed: ParsedQuery) -> dict[str, Any] | None:
    """Return the query part of the user's text, or None when there is none."""
    clauses: list[dict[str, Any]] = []
    if parsed.raw_words:
        words = " ".join(parsed.raw_words)
        clauses.append({"match": {"all_text": {"query": words, "operator": "and"}}})
    for phrase in parsed.raw_phrases:
        clauses.append({"match_phrase": {"all_text": {"query": phrase}}})
    text = {"bool": {"must": clauses, "should": [{"match": {"subject": {"query": parsed.text, "boost": 2.0}}}]}} if clauses else None
    if parsed.chrono_key is None:
        return text
    exact = [
        {"term": {"chrono_key": {"value": parsed.chrono_key, "boost": CHRONO_BOOST}}},
        {"term": {"chrono_tail": {"value": parsed.chrono_key, "boost": CHRONO_BOOST}}},
    ]
    return {"bool": {"should": exact + ([text] if text else []), "minimum_should_match": 1}}


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


def facet_aggregations(facet_filters: dict[str, dict[str, Any]]) -> dict[str, Any]:
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
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in FACET_FIELDS:
        groups.setdefault(tuple(key for key in facet_filters if key != name), []).append(name)
    aggregations: dict[str, Any] = {}
    for filtered_by, names in groups.items():
        terms = {name: {"terms": {"field": FACET_FIELDS[name], "size": FACET_SIZE}} for name in names}
        if not filtered_by:
            aggregations.update(terms)
            continue
        aggregations[_group_name(filtered_by)] = {
            "filter": {"bool": {"filter": [facet_filters[key] for key in filtered_by]}},
            "aggs": terms,
        }
    return aggregations


def _group_name(filtered_by: tuple[str, ...]) -> str:
    return "filtered_by_" + "_and_".join(filtered_by)


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
                      visibility: dict[str, Any] | None) -> dict[str, Any]:
    """Return the search request body: query, filters, facets, highlighting, sort and page."""
    query = text_query(parsed)
    if query is None and request.text.strip():
        # Text without any searchable word matches nothing, as in the embedded backend.
        query = {"match_none": {}}
    facet_filters = facet_clauses(request, filters)
    body: dict[str, Any] = {
        "query": {"bool": {"must": [query or {"match_all": {}}], "filter": filter_clauses(request, filters, visibility)}},
        "aggs": facet_aggregations(facet_filters),
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
        "track_total_hits": True,
        "_source": SOURCE_FIELDS,
    }
    if facet_filters:
        body["post_filter"] = {"bool": {"filter": list(facet_filters.values())}}
    return body

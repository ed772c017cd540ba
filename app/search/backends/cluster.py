"""Elasticsearch and OpenSearch backends: one query builder, one mapping, two clients.

The index is reached through an alias (SEARCH_INDEX), so a rebuild fills a
new index and swaps the alias in one atomic call while searches go on.

A search follows the rule of the embedded backend. Up to EXACT_LIMIT matches,
the total, the ranking and the facets are exact. Past it, the total reads
EXACT_LIMIT, and the page, the ranking and the facets cover the EXACT_LIMIT
newest matches by mail id (oldest for the date_asc sort). One ``_msearch``
of cheap probes finds where each window ends before the search itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from markupsafe import Markup

from app.mail.visibility import search_visibility_filter
from app.organisation.context import UserContext
from app.search.analysis import ParsedQuery, parse_query
from app.search.backends import BackendUnavailable
from app.search.criteria import (
    EXACT_LIMIT,
    FACETS,
    ResolvedFilters,
    SearchHit,
    SearchRequest,
    SearchResult,
    department_facet,
    resolve_filters,
)
from app.search.documents import MailDocument
from app.search.mapping import MAPPING_VERSION, index_definition
from app.search.query import (
    FACET_SIZE,
    HIGHLIGHT_FIELDS,
    Windows,
    build_search_body,
    facet_buckets,
    facet_clauses,
    filter_clauses,
    window_probe_body,
    windowed_query,
)
from app.search.snippets import excerpt

log = logging.getLogger(__name__)

SCAN_PAGE = 5000


class ClientAdapter:
    """The few calls the backend makes, on either client, with their errors as BackendUnavailable."""

    def __init__(self, client: Any, errors: tuple[type[BaseException], ...]) -> None:
        self.client = client
        self.errors = errors

    def call(self, function: Any, **arguments: Any) -> Any:
        try:
            response = function(**arguments)
        except self.errors as error:
            raise BackendUnavailable(str(error)) from error
        return getattr(response, "body", response)

    def mapping_versions(self, alias: str) -> dict[str, int | None]:
        """Return the Estafette mapping version of each index behind ``alias``, None when it has none."""
        mappings = self.call(self.client.indices.get_mapping, index=alias)
        return {
            name: (definition.get("mappings", {}).get("_meta") or {}).get("estafette_mapping_version")
            for name, definition in mappings.items()
        }

    @staticmethod
    def responses(response: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the responses of an ``_msearch``, or raise BackendUnavailable when one of its searches failed."""
        responses = response["responses"]
        for item in responses:
            if "error" in item:
                raise BackendUnavailable(f"a search of the _msearch failed: {json.dumps(item['error'])[:500]}")
        return list(responses)


class OpenSearchAdapter(ClientAdapter):
    def __init__(self, url: str, timeout: float) -> None:
        from opensearchpy import OpenSearch
        from opensearchpy.exceptions import OpenSearchException

        super().__init__(OpenSearch(hosts=[url], timeout=timeout, max_retries=0), (OpenSearchException,))

    def create_index(self, name: str, definition: dict[str, Any]) -> None:
        self.call(self.client.indices.create, index=name, body=definition)

    def bulk(self, lines: list[dict[str, Any]], refresh: bool) -> dict[str, Any]:
        return self.call(self.client.bulk, body=lines, refresh="wait_for" if refresh else "false")

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call(self.client.search, index=index, body=body)

    def multi_search(self, index: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for body in bodies:
            lines.extend(({}, body))
        return self.responses(self.call(self.client.msearch, index=index, body=lines))

    def count(self, index: str) -> int:
        return int(self.call(self.client.count, index=index)["count"])

    def alias_targets(self, alias: str) -> list[str]:
        if not self.call(self.client.indices.exists_alias, name=alias):
            return []
        return sorted(self.call(self.client.indices.get_alias, name=alias))

    def index_exists(self, name: str) -> bool:
        return bool(self.call(self.client.indices.exists, index=name))

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        self.call(self.client.indices.update_aliases, body={"actions": actions})

    def delete_index(self, name: str) -> None:
        self.call(self.client.indices.delete, index=name)

    def refresh(self, index: str) -> None:
        self.call(self.client.indices.refresh, index=index)


class ElasticsearchAdapter(ClientAdapter):
    def __init__(self, url: str, timeout: float) -> None:
        from elastic_transport import TransportError
        from elasticsearch import ApiError, Elasticsearch

        super().__init__(Elasticsearch(url, request_timeout=timeout, max_retries=0), (ApiError, TransportError))

    def create_index(self, name: str, definition: dict[str, Any]) -> None:
        self.call(self.client.indices.create, index=name, settings=definition["settings"], mappings=definition["mappings"])

    def bulk(self, lines: list[dict[str, Any]], refresh: bool) -> dict[str, Any]:
        return self.call(self.client.bulk, operations=lines, refresh="wait_for" if refresh else "false")

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call(self.client.search, index=index, body=body)

    def multi_search(self, index: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        searches: list[dict[str, Any]] = []
        for body in bodies:
            searches.extend(({}, body))
        return self.responses(self.call(self.client.msearch, index=index, searches=searches))

    def count(self, index: str) -> int:
        return int(self.call(self.client.count, index=index)["count"])

    def alias_targets(self, alias: str) -> list[str]:
        if not self.call(self.client.indices.exists_alias, name=alias):
            return []
        return sorted(self.call(self.client.indices.get_alias, name=alias))

    def index_exists(self, name: str) -> bool:
        return bool(self.call(self.client.indices.exists, index=name))

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        self.call(self.client.indices.update_aliases, actions=actions)

    def delete_index(self, name: str) -> None:
        self.call(self.client.indices.delete, index=name)

    def refresh(self, index: str) -> None:
        self.call(self.client.indices.refresh, index=index)


class ClusterBackend:
    in_database = False

    def __init__(self, name: str, adapter: Any, alias: str, refresh: bool = False, target: str | None = None) -> None:
        self.name = name
        self.adapter = adapter
        self.alias = alias
        # Tests ask each write to wait until it is searchable.
        self.refresh = refresh
        # A concrete index being rebuilt, written directly instead of through the alias.
        self.target = target
        self._ready = target is not None

    # --- Index lifecycle ----------------------------------------------------------------------

    def ensure_index(self) -> None:
        """Create the first index and its alias when neither exists, or check the mapping version of the existing one.

        Raises BackendUnavailable, asking for `flask search reindex`, when the
        index was created by another version of the mapping: its queries would
        fail or return wrong windows. The check runs again at the next call.
        """
        if self._ready:
            return
        if not self.adapter.alias_targets(self.alias) and not self.adapter.index_exists(self.alias):
            concrete = self._new_index_name()
            self.adapter.create_index(concrete, index_definition())
            self.adapter.update_aliases([{"add": {"index": concrete, "alias": self.alias}}])
            log.info("search index %s created behind alias %s", concrete, self.alias)
        else:
            versions = self.adapter.mapping_versions(self.alias)
            outdated = sorted(name for name, version in versions.items() if version != MAPPING_VERSION)
            if outdated:
                message = (f"search index {', '.join(outdated)} was created with mapping version "
                           f"{versions[outdated[0]]}, this version needs {MAPPING_VERSION}: run `flask search reindex`")
                log.error(message)
                raise BackendUnavailable(message)
        self._ready = True

    def _new_index_name(self) -> str:
        return f"{self.alias}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"

    def begin_rebuild(self) -> ClusterBackend:
        concrete = self._new_index_name()
        self.adapter.create_index(concrete, index_definition())
        return ClusterBackend(self.name, self.adapter, self.alias, refresh=False, target=concrete)

    def finish_rebuild(self, rebuilt: ClusterBackend) -> None:
        """Point the alias at the rebuilt index in one call, then delete the old indices."""
        assert rebuilt.target is not None
        self.adapter.refresh(rebuilt.target)
        old = self.adapter.alias_targets(self.alias)
        actions = [{"remove": {"index": name, "alias": self.alias}} for name in old]
        actions.append({"add": {"index": rebuilt.target, "alias": self.alias}})
        self.adapter.update_aliases(actions)
        for name in old:
            self.adapter.delete_index(name)
        self._ready = True
        log.info("search alias %s now points to %s", self.alias, rebuilt.target)

    # --- Writing ----------------------------------------------------------------------------------

    def write(self, documents: list[MailDocument], deleted_ids: list[int]) -> None:
        if not documents and not deleted_ids:
            return
        self.ensure_index()
        index = self.target or self.alias
        lines: list[dict[str, Any]] = []
        for document in documents:
            lines.append({"index": {"_index": index, "_id": str(document.mail_id)}})
            lines.append(document.engine_source())
        for mail_id in deleted_ids:
            lines.append({"delete": {"_index": index, "_id": str(mail_id)}})
        response = self.adapter.bulk(lines, self.refresh)
        if response.get("errors"):
            failures = [
                item for item in response.get("items", [])
                for action in item.values()
                if action.get("error") and not (action.get("status") == 404 and "delete" in item)
            ]
            if failures:
                raise BackendUnavailable(f"{len(failures)} documents rejected, first: {json.dumps(failures[0])[:500]}")

    def count(self) -> int:
        self.ensure_index()
        return self.adapter.count(self.alias)

    def indexed_versions(self) -> dict[int, int]:
        self.ensure_index()
        versions: dict[int, int] = {}
        for hit in self._scan({"query": {"match_all": {}}, "_source": ["mail_version"]}):
            versions[int(hit["_id"])] = int(hit["_source"].get("mail_version", 0))
        return versions

    def _scan(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        after: list[Any] | None = None
        while True:
            page = {**body, "size": SCAN_PAGE, "sort": [{"chrono": "asc"}]}
            if after is not None:
                page["search_after"] = after
            hits = self.adapter.search(self.alias, page)["hits"]["hits"]
            yield from hits
            if len(hits) < SCAN_PAGE:
                return
            after = hits[-1]["sort"]

    # --- Searching -------------------------------------------------------------------------------

    def search_body(self, user: UserContext, request: SearchRequest, today: date | None = None) -> dict[str, Any]:
        """Return the body of the search itself, after its window probes when it has any."""
        return self._probed_body(user, request, today)[0]

    def search(self, user: UserContext, request: SearchRequest, today: date | None = None) -> SearchResult:
        self.ensure_index()
        body, windows = self._probed_body(user, request, today)
        response = self.adapter.search(self.alias, body)
        hits = [self._hit(hit) for hit in response["hits"]["hits"]]
        buckets = facet_buckets(response["aggregations"])
        facets = {name: [(str(bucket["key"]), int(bucket["doc_count"])) for bucket in buckets[name]] for name in FACETS}
        facets["department"] = department_facet(dict(facets["department"]), FACET_SIZE)
        total_is_exact = windows is None or windows.hits is None
        facets_are_exact = total_is_exact and (windows is None or all(value is None for value in windows.facets.values()))
        total = int(response["hits"]["total"]["value"]) if total_is_exact else EXACT_LIMIT
        return SearchResult(total=total, hits=hits, facets=facets, page=request.page, page_size=request.page_size,
                            total_is_exact=total_is_exact, facets_are_exact=facets_are_exact)

    def _probed_body(self, user: UserContext, request: SearchRequest,
                     today: date | None) -> tuple[dict[str, Any], Windows | None]:
        parsed = parse_query(request.text)
        filters = resolve_filters(request, today or date.today())
        visibility = search_visibility_filter(user)
        windows = self._windows(request, parsed, filters, visibility)
        return build_search_body(request, parsed, filters, visibility, windows), windows

    def _windows(self, request: SearchRequest, parsed: ParsedQuery, filters: ResolvedFilters,
                 visibility: dict[str, Any] | None) -> Windows | None:
        """Probe the window of the page and the own window of each facet that is also a filter, in one round trip.

        Return None when the search has nothing to cut (text without any
        searchable word, or a registration number alone).
        """
        query = windowed_query(parsed, request.text)
        if query is None:
            return None
        newest_first = request.sort != "date_asc"
        common = filter_clauses(request, filters, visibility)
        facet_filters = facet_clauses(request, filters)
        probes = [window_probe_body(query, [*common, *facet_filters.values()], newest_first, EXACT_LIMIT)]
        for name in facet_filters:
            others = [clause for key, clause in facet_filters.items() if key != name]
            probes.append(window_probe_body(query, [*common, *others], newest_first, EXACT_LIMIT))
        boundaries = [self._window_end(response) for response in self.adapter.multi_search(self.alias, probes)]
        return Windows(newest_first=newest_first, hits=boundaries[0], facets=dict(zip(facet_filters, boundaries[1:], strict=True)))

    @staticmethod
    def _window_end(probe: dict[str, Any]) -> int | None:
        """Return the mail id where a probed window ends, or None when it has EXACT_LIMIT matches or fewer."""
        if int(probe["hits"]["total"]["value"]) <= EXACT_LIMIT:
            return None
        return int(probe["hits"]["hits"][0]["sort"][0])

    @staticmethod
    def _hit(hit: dict[str, Any]) -> SearchHit:
        source = hit["_source"]
        highlights = hit.get("highlight", {})
        fragment = next((highlights[name][0] for name in HIGHLIGHT_FIELDS if highlights.get(name)), None)
        # The highlighter escaped the text (encoder "html"): the fragment is safe markup.
        snippet = Markup(fragment) if fragment else excerpt(source["subject"])
        return SearchHit(int(hit["_id"]), source["chrono"], source["subject"], date.fromisoformat(source["arrival_date"]),
                         source["status"], source["mail_type"], snippet, hit.get("_score"))


def cluster_backend(name: str, url: str, alias: str, timeout: float = 10.0, refresh: bool = False) -> ClusterBackend:
    adapter = OpenSearchAdapter(url, timeout) if name == "opensearch" else ElasticsearchAdapter(url, timeout)
    return ClusterBackend(name, adapter, alias, refresh=refresh)

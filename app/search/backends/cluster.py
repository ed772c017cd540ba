"""Elasticsearch and OpenSearch backends: one query builder, one mapping, two clients.

The index is reached through an alias (SEARCH_INDEX), so a rebuild fills a
new index and swaps the alias in one atomic call while searches go on.
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
from app.search.analysis import parse_query
from app.search.backends import BackendUnavailable
from app.search.criteria import FACETS, SearchHit, SearchRequest, SearchResult, resolve_filters
from app.search.documents import MailDocument
from app.search.mapping import index_definition
from app.search.query import HIGHLIGHT_FIELDS, build_search_body, facet_buckets
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
        """Create the first index and its alias when neither exists."""
        if self._ready:
            return
        if not self.adapter.alias_targets(self.alias) and not self.adapter.index_exists(self.alias):
            concrete = self._new_index_name()
            self.adapter.create_index(concrete, index_definition())
            self.adapter.update_aliases([{"add": {"index": concrete, "alias": self.alias}}])
            log.info("search index %s created behind alias %s", concrete, self.alias)
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
        filters = resolve_filters(request, today or date.today())
        return build_search_body(request, parse_query(request.text), filters, search_visibility_filter(user))

    def search(self, user: UserContext, request: SearchRequest, today: date | None = None) -> SearchResult:
        self.ensure_index()
        response = self.adapter.search(self.alias, self.search_body(user, request, today))
        hits = [self._hit(hit) for hit in response["hits"]["hits"]]
        buckets = facet_buckets(response["aggregations"])
        facets = {name: [(str(bucket["key"]), int(bucket["doc_count"])) for bucket in buckets[name]] for name in FACETS}
        return SearchResult(total=int(response["hits"]["total"]["value"]), hits=hits, facets=facets,
                            page=request.page, page_size=request.page_size)

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

"""Search backends: the embedded index inside the database, or an Elasticsearch/OpenSearch cluster."""

from __future__ import annotations

from typing import Any, Protocol

from flask import current_app

from app.organisation.context import UserContext
from app.search.criteria import SearchRequest, SearchResult
from app.search.documents import MailDocument


class BackendUnavailable(RuntimeError):
    """The search engine did not answer or rejected a request; the outbox keeps the change."""


class SearchBackend(Protocol):
    name: str
    # True when the index lives in the application's database and is written in its transactions.
    in_database: bool

    def write(self, documents: list[MailDocument], deleted_ids: list[int]) -> None: ...

    def search(self, user: UserContext, request: SearchRequest) -> SearchResult: ...

    def count(self) -> int: ...

    def indexed_versions(self) -> dict[int, int]: ...


_cache: dict[tuple[Any, ...], SearchBackend] = {}


def configured_backend() -> SearchBackend:
    """Return the backend the settings choose (SEARCH_BACKEND, SEARCH_URL, SEARCH_INDEX)."""
    config = current_app.config
    name = config.get("SEARCH_BACKEND", "embedded")
    key = (name, config.get("SEARCH_URL"), config.get("SEARCH_INDEX"))
    backend = _cache.get(key)
    if backend is None:
        if name == "embedded":
            from app.search.backends.embedded import EmbeddedBackend

            backend = EmbeddedBackend()
        else:
            from app.search.backends.cluster import cluster_backend

            backend = cluster_backend(name, config["SEARCH_URL"], config["SEARCH_INDEX"],
                                      timeout=float(config.get("SEARCH_TIMEOUT_SECONDS", 10)))
        _cache[key] = backend
    return backend

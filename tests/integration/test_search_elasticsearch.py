"""The Elasticsearch client path: the requests it sends, checked on a loopback HTTP server.

No Elasticsearch server can be installed here, so a small server on
127.0.0.1 records each request and replies as Elasticsearch 9 does (with the
X-Elastic-Product header the client requires). The bodies must be the ones
the shared query builder makes for OpenSearch.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.search.backends.cluster import OpenSearchAdapter, cluster_backend
from app.search.criteria import SearchRequest
from app.search.documents import build_document
from tests.conftest import user_context
from tests.integration.search_support import days_ago, register_corpus


def empty_search_response(request_body: bytes) -> dict[str, Any]:
    """Return the response of Elasticsearch to a search matching nothing, with the requested aggregations."""
    return {
        "took": 1, "timed_out": False, "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []},
        "aggregations": _empty_aggregations(json.loads(request_body or b"{}").get("aggs", {})),
    }


def probe_response(request_body: bytes, window_end: int | None) -> dict[str, Any]:
    """Return the response of Elasticsearch to a window probe: more than EXACT_LIMIT matches when ``window_end`` is set."""
    probe = json.loads(request_body)
    if window_end is None:
        return {"took": 1, "timed_out": False, "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}}
    return {
        "took": 1, "timed_out": False,
        "hits": {"total": {"value": probe["track_total_hits"], "relation": "gte"},
                 "hits": [{"_index": "estafette-mail", "_id": str(window_end), "_score": None, "sort": [window_end]}]},
    }


def _empty_aggregations(aggregations: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for name, aggregation in aggregations.items():
        if "terms" in aggregation:
            responses[name] = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []}
        else:
            responses[name] = {"doc_count": 0, **_empty_aggregations(aggregation.get("aggs", {}))}
    return responses


class RecordingHandler(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, bytes]] = []
    # The mail id each window probe of an _msearch returns, or None for a window with few matches.
    window_end: int | None = None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).requests.append((self.command, self.path, body))
        if self.command == "HEAD":
            payload: Any = None
            status = 200
        elif self.path.startswith("/_bulk"):
            payload, status = {"took": 1, "errors": False, "items": []}, 200
        elif "/_msearch" in self.path:
            bodies = [line for line in body.decode().splitlines() if line][1::2]
            payload = {"took": 1, "responses": [probe_response(line.encode(), type(self).window_end) for line in bodies]}
            status = 200
        elif "/_search" in self.path:
            payload, status = empty_search_response(body), 200
        else:
            payload, status = {"acknowledged": True}, 200
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture()
def recorder() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    RecordingHandler.requests = []
    RecordingHandler.window_end = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", RecordingHandler.requests
    server.shutdown()
    server.server_close()


def _opensearch_twin(url: str) -> Any:
    twin = cluster_backend("opensearch", url, "estafette-mail")
    assert isinstance(twin.adapter, OpenSearchAdapter)
    return twin


def test_search_body_is_shared_builder(app_context, recorder):
    url, requests = recorder
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    user = user_context("sejour")
    request = SearchRequest(text="l’arrêté Saint-Denis AR/2026-001", mail_types=["public_complaint"], department="DMI",
                            arrival_from=days_ago(30), due_band="overdue", sort="relevance", page=2, page_size=10)
    backend.search(user, request)
    method, path, body = requests[-1]
    sent = json.loads(body)

    assert method == "POST"
    assert path.startswith("/estafette-mail/_search")
    assert sent == _opensearch_twin(url).search_body(user, request)
    assert "query_string" not in body.decode()
    assert sent["highlight"]["encoder"] == "html"
    assert sent["from"] == 10
    assert sent["query"]["bool"]["filter"][0]["bool"]["minimum_should_match"] == 1


def test_search_body_for_administrator_has_no_visibility_filter(app_context, recorder):
    url, requests = recorder
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    backend.search(user_context("admin"), SearchRequest(text="demande"))
    sent = json.loads(requests[-1][2])

    assert sent["query"]["bool"]["filter"] == []
    assert sent["query"]["bool"]["must"][0]["bool"]["must"] == [{"match": {"all_text": {"query": "demande", "operator": "and"}}}]


def test_facets_without_filters_are_plain_terms(app_context, recorder):
    url, requests = recorder
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    result = backend.search(user_context("admin"), SearchRequest(text="demande"))
    sent = json.loads(requests[-1][2])

    assert set(sent["aggs"]) == {"mail_type", "category", "status", "department"}
    assert sent["aggs"]["department"] == {"terms": {"field": "handling_department_id", "size": 1000}}
    assert "post_filter" not in sent
    assert result.facets == {"mail_type": [], "category": [], "status": [], "department": []}


def test_facets_under_same_filters_share_aggregation(app_context, recorder):
    url, requests = recorder
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    request = SearchRequest(text="demande", mail_types=["public_complaint"], statuses=["new"])
    result = backend.search(user_context("admin"), request)
    sent = json.loads(requests[-1][2])
    type_filter = {"terms": {"mail_type": ["public_complaint"]}}
    status_filter = {"terms": {"status": ["new"]}}

    assert set(sent["aggs"]) == {"filtered_by_status", "filtered_by_mail_type", "filtered_by_mail_type_and_status"}
    assert sent["aggs"]["filtered_by_status"]["filter"] == {"bool": {"filter": [status_filter]}}
    assert set(sent["aggs"]["filtered_by_status"]["aggs"]) == {"mail_type"}
    assert sent["aggs"]["filtered_by_mail_type"]["filter"] == {"bool": {"filter": [type_filter]}}
    assert set(sent["aggs"]["filtered_by_mail_type"]["aggs"]) == {"status"}
    assert sent["aggs"]["filtered_by_mail_type_and_status"]["filter"] == {"bool": {"filter": [type_filter, status_filter]}}
    assert set(sent["aggs"]["filtered_by_mail_type_and_status"]["aggs"]) == {"category", "department"}
    assert sent["post_filter"] == {"bool": {"filter": [type_filter, status_filter]}}
    assert set(result.facets) == {"mail_type", "category", "status", "department"}


def test_bulk_sends_engine_documents(app_context, recorder):
    url, requests = recorder
    mails = register_corpus()
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    document = build_document(mails["coeur_de_ville"])
    backend.write([document], [12345])
    method, path, body = requests[-1]
    lines = [json.loads(line) for line in body.decode().splitlines() if line]

    assert path.startswith("/_bulk")
    assert lines[0] == {"index": {"_index": "estafette-mail", "_id": str(document.mail_id)}}
    assert lines[1] == document.engine_source()
    assert lines[2] == {"delete": {"_index": "estafette-mail", "_id": "12345"}}


def test_first_write_creates_index_and_alias(app_context, recorder):
    url, requests = recorder
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    # The recorder replies 200 to HEAD /_alias, so pretend the alias is missing.
    backend.adapter.alias_targets = lambda alias: []
    backend.adapter.index_exists = lambda name: False
    backend.ensure_index()
    created = next(request for request in requests if request[0] == "PUT")
    definition = json.loads(created[2])
    aliases = next(request for request in requests if request[1].startswith("/_aliases"))

    assert created[1].startswith("/estafette-mail-")
    assert definition["mappings"]["dynamic"] is False
    assert definition["settings"]["index"]["analysis"]["analyzer"]["estafette_french"]["filter"][0] == "estafette_elision"
    assert json.loads(aliases[2])["actions"][0]["add"]["alias"] == "estafette-mail"


def test_probes_batched_in_one_msearch(app_context, recorder):
    url, requests = recorder
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    request = SearchRequest(text="demande", mail_types=["public_complaint"], statuses=["new"], sort="date_asc")
    backend.search(user_context("admin"), request)
    method, path, body = requests[0]
    lines = [json.loads(line) for line in body.decode().splitlines() if line]
    probes = lines[1::2]

    assert path.startswith("/estafette-mail/_msearch")
    assert len(requests) == 2
    assert len(probes) == 3
    assert all(probe["sort"] == [{"mail_id": "asc"}] for probe in probes)
    assert all(probe["from"] == 999 and probe["size"] == 1 for probe in probes)
    assert all(probe["track_total_hits"] == 1001 for probe in probes)
    assert all("aggs" not in probe and "highlight" not in probe for probe in probes)
    assert probes[0]["query"]["bool"]["filter"][1:] == [{"terms": {"mail_type": ["public_complaint"]}},
                                                         {"terms": {"status": ["new"]}}]
    assert probes[1]["query"]["bool"]["filter"][1:] == [{"terms": {"status": ["new"]}}]
    assert probes[2]["query"]["bool"]["filter"][1:] == [{"terms": {"mail_type": ["public_complaint"]}}]


def test_search_within_few_matches_unchanged(app_context, recorder):
    url, requests = recorder
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    result = backend.search(user_context("admin"), SearchRequest(text="demande"))
    sent = json.loads(requests[-1][2])

    assert sent["track_total_hits"] is True
    assert "range" not in json.dumps(sent)
    assert result.total_is_exact
    assert result.facets_are_exact


def test_search_past_limit_cut_to_window(app_context, recorder):
    url, requests = recorder
    RecordingHandler.window_end = 590000
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    result = backend.search(user_context("admin"), SearchRequest(text="demande"))
    sent = json.loads(requests[-1][2])

    assert requests[-1][1].startswith("/estafette-mail/_search")
    assert sent["query"]["bool"]["filter"] == [{"range": {"mail_id": {"gte": 590000}}}]
    assert sent["track_total_hits"] is False
    assert sent["aggs"]["mail_type"] == {"terms": {"field": "mail_type", "size": 20}}
    assert "post_filter" not in sent
    assert result.total == 1000
    assert not result.total_is_exact
    assert not result.facets_are_exact


def test_facet_filter_window_in_its_group(app_context, recorder):
    url, requests = recorder
    RecordingHandler.window_end = 590000
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    backend.search(user_context("admin"), SearchRequest(text="demande", mail_types=["public_complaint"]))
    sent = json.loads(requests[-1][2])
    window = {"range": {"mail_id": {"gte": 590000}}}

    # Every window ends at the same mail here, so the query cuts them all and no group repeats it.
    assert sent["query"]["bool"]["filter"] == [window]
    assert sent["post_filter"] == {"bool": {"filter": [{"terms": {"mail_type": ["public_complaint"]}}]}}
    assert sent["aggs"]["mail_type"] == {"terms": {"field": "mail_type", "size": 20}}
    assert sent["aggs"]["filtered_by_mail_type"]["filter"] == {"bool": {"filter": [{"terms": {"mail_type": ["public_complaint"]}}]}}


def test_exact_number_stays_in_window(app_context, recorder):
    url, requests = recorder
    RecordingHandler.window_end = 590000
    backend = cluster_backend("elasticsearch", url, "estafette-mail")
    backend._ready = True
    backend.search(user_context("admin"), SearchRequest(text="demande PREF75/2026/A/000123"))
    probe = json.loads(requests[0][2].decode().splitlines()[1])
    sent = json.loads(requests[-1][2])
    window = sent["query"]["bool"]["filter"][0]["bool"]

    assert "chrono_key" not in json.dumps(probe)
    assert window["should"][0] == {"range": {"mail_id": {"gte": 590000}}}
    assert any("chrono_key" in json.dumps(clause) for clause in window["should"][1:])
    assert window["minimum_should_match"] == 1

"""The search page: header box, results with snippets and facets, filters kept, saved searches."""

from __future__ import annotations

import re

from app.extensions import db
from app.search.indexer import drain
from tests.conftest import csrf_token
from tests.integration.search_support import register_corpus


def test_header_box_on_every_page(client_as):
    page = client_as("sejour").get("/").get_data(as_text=True)
    assert 'id="header-search-q"' in page


def test_results_page_shows_snippets_and_facets(app_context, client_as):
    register_corpus()
    drain()
    page = client_as("sejour").get("/search/?q=titres+de+s%C3%A9jour").get_data(as_text=True)

    assert "<mark>" in page
    assert 'data-facets="mail_type"' in page
    assert "Demande de premier titre de séjour" in page
    assert "Cœur de ville" not in page


def test_user_text_never_error_page(app_context, client_as):
    register_corpus()
    drain()
    client = client_as("sejour")
    for text in ['"arrêté du 3 mars', "dossier (suite", "NOT", "préfet*", "AR/2026-001", "<script>alert(1)</script>"]:
        response = client.get("/search/", query_string={"q": text})
        assert response.status_code == 200, text
        assert "<script>alert(1)</script>" not in response.get_data(as_text=True)


def test_day_first_dates_kept_across_pages(app_context, client_as):
    register_corpus()
    drain()
    page = client_as("admin").get("/search/?arrival_from=03/02/2026&arrival_to=12/02/2026&sort=date_asc").get_data(as_text=True)

    assert 'value="03/02/2026"' in page
    assert 'value="12/02/2026"' in page


def test_invalid_date_message(app_context, client_as):
    page = client_as("admin").get("/search/?arrival_from=31/02/2026").get_data(as_text=True)
    assert 'class="text-danger search-error" data-field="arrival_from"' in page


def test_dates_in_wrong_order_message(app_context, client_as):
    page = client_as("admin").get("/search/?arrival_from=31/12/2026&arrival_to=1/12/2026").get_data(as_text=True)

    assert 'data-field="arrival_to">La date de fin est antérieure à la date de début.<' in page


def test_registration_is_indexed_after_form_post(app_context, client_as):
    from sqlalchemy import select

    from app.search.models import SearchDocument

    register_corpus()
    client = client_as("courrier")
    form = client.get("/search/?q=demande").get_data(as_text=True)
    client.post("/search/saved", data={"csrf_token": csrf_token(form), "name": "Demandes", "query_string": "q=demande"})

    assert db.session.execute(select(SearchDocument.mail_id)).first() is not None


def test_saved_search_per_user(client_as):
    client = client_as("sejour")
    other_client = client_as("subventions")
    form = client.get("/search/?q=demande").get_data(as_text=True)
    response = client.post("/search/saved", data={"csrf_token": csrf_token(form), "name": "Mes demandes", "query_string": "q=demande"})
    own = client.get("/search/").get_data(as_text=True)
    other = other_client.get("/search/").get_data(as_text=True)
    saved_id = re.search(r"/search/saved/(\d+)/delete", own).group(1)

    assert response.status_code == 302
    assert "Mes demandes" in own
    assert "Mes demandes" not in other
    other_token = csrf_token(other_client.get("/search/?q=x").get_data(as_text=True))
    assert other_client.post(f"/search/saved/{saved_id}/delete", data={"csrf_token": other_token}).status_code == 404
    assert client.post(f"/search/saved/{saved_id}/delete", data={"csrf_token": csrf_token(own)}).status_code == 302
    assert "Mes demandes" not in client.get("/search/").get_data(as_text=True)


def test_page_says_total_is_lower_bound(app_context, client_as, monkeypatch):
    from app.search.backends import embedded

    register_corpus()
    drain()
    monkeypatch.setattr(embedded, "EXACT_LIMIT", 2)
    page = client_as("admin").get("/search/?q=&sort=date_desc").get_data(as_text=True)

    assert 'data-exact="false"' in page
    assert len(re.findall(r'class="search-hit"', page)) == 2

"""French relevance table: each query's expected mail comes first, on every backend."""

from __future__ import annotations

import pytest

from app.search.criteria import SearchRequest
from app.search.operations import search
from tests.conftest import user_context
from tests.integration.search_support import index_all, register_corpus, search_backend  # noqa: F401

# (query, key of the mail expected first, keys that must not match at all)
RELEVANCE_TABLE = [
    # Accents, either way.
    ("sejour etudiants", "renouvellement", []),
    ("séjour étudiants", "renouvellement", []),
    ("prefectoral", "arrete", []),
    ("ÉLECTIONS", "elections", []),
    ("elections municipales", "elections", []),
    # Ligature œ and its two-letter spelling, upper and lower case (C19).
    ("coeur", "coeur_de_ville", []),
    ("cœur", "coeur_de_ville", []),
    ("oeuvre sociale", "coeur_de_ville", []),
    ("soeurs", "coeur_de_ville", []),
    ("SŒUR", "coeur_de_ville", []),
    ("oehmichen", "naturalisation", []),
    # Elisions, straight and typographic apostrophes.
    ("l'arrêté", "arrete", []),
    ("l’arrêté préfectoral", "arrete", []),
    ("arrêté", "arrete", []),
    ("d'accès", "reference", []),
    ("jusqu'à nouvel ordre", "jusqu_a", []),
    ("aire d'accueil", "jusqu_a", []),
    # Singular and plural.
    ("premier titre de séjour", "premier_titre", []),
    ("premiers titres de séjour", "premier_titre", []),
    ("titre de séjour étudiant", "renouvellement", []),
    ("demande d'autorisation de buvette", "buvette", []),
    ("agriculteur", "saint_denis_event", []),
    ("réclamations", "arrete", []),
    # Hyphenated place names are phrases.
    ("Saint-Denis", "saint_denis_event", ["saint_ouen"]),
    ("saint-denis subvention", "saint_denis_grant", ["saint_ouen", "saint_denis_event"]),
    ("Notre-Dame-d’Or", "buvette", []),
    ("Saint-Étienne", "coeur_de_ville", []),
    # Reference numbers and dates written in the text.
    ("AR/2026-001", "reference", []),
    ("2026-114", "arrete", []),
    ("11/2025", "reference", []),
    # Correspondents' names typed without accents.
    ("helene lefevre", "premier_titre", []),
    ("Lefevre-Giraud", "premier_titre", []),
    ("benedicte", "arrete", []),
    ("maelle roussel", "jusqu_a", []),
    ("anais garnier", "reference", []),
    # Quoted phrases.
    ('"premier titre"', "premier_titre", ["renouvellement"]),
    # Custom fields.
    ("registre des délibérations", "reference", []),
]


@pytest.mark.parametrize(("query", "expected", "excluded"), RELEVANCE_TABLE, ids=[row[0] for row in RELEVANCE_TABLE])
def test_relevance_table(search_backend, query, expected, excluded):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    result = search(user_context("admin"), SearchRequest(text=query), backend=search_backend)
    found = [hit.mail_id for hit in result.hits]

    assert found, f"{query!r} found nothing"
    assert found[0] == mails[expected].id, f"{query!r} ranked {[hit.subject for hit in result.hits]}"
    for key in excluded:
        assert mails[key].id not in found, f"{query!r} matched {mails[key].subject!r}"


def test_relevance_registration_numbers(search_backend):  # noqa: F811
    mails = register_corpus()
    index_all(search_backend)
    target = mails["naturalisation"]
    year, number = target.chrono_year, target.chrono_number
    typed_forms = [
        target.chrono,
        target.chrono.replace("/", ""),
        target.chrono.lower(),
        f"PREF75/{year}/A/{number}",
        f"{year}/A/{number:06d}",
        f"{year}-A-{number}",
        f"{year}A{number}",
    ]
    for typed in typed_forms:
        result = search(user_context("admin"), SearchRequest(text=typed), backend=search_backend)
        assert result.hits, f"{typed!r} found nothing"
        assert result.hits[0].mail_id == target.id, f"{typed!r} ranked {[hit.chrono for hit in result.hits]}"

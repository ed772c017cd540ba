"""French analysis of the embedded index: folding, elisions, stems, registration numbers, queries."""

from __future__ import annotations

import pytest

from app.search.analysis import analyse, chrono_keys, chrono_query_key, parse_query, stem
from app.search.backends.embedded import fts5_expression, tsquery_expression


@pytest.mark.parametrize(("first", "second"), [
    ("préfecture", "PREFECTURE"),
    ("cœur", "coeur"),
    ("ŒUVRE", "oeuvre"),
    ("Sœurs", "soeur"),
    ("l’arrêté", "arrete"),
    ("l'arrêté", "arrêtés"),
    ("d’accès", "acces"),
    ("qu’aujourd’hui", "aujourd'hui"),
    ("demandées", "demande"),
    ("titres", "titre"),
    ("bureaux", "bureau"),
    ("étrangères", "etranger"),
])
def test_same_terms(first, second):
    assert analyse(first) == analyse(second)


def test_different_words_stay_apart():
    assert analyse("demande") != analyse("demandeur")


def test_digits_lose_leading_zeros():
    assert stem("000123") == "123"


def test_chrono_keys():
    assert chrono_keys("PREF75/2026/A/000123") == ("pref752026a123", "2026a123")


@pytest.mark.parametrize("typed", ["PREF75/2026/A/000123", "pref752026a123", "PREF75-2026-A-123", "PREF75 2026 A 0123"])
def test_chrono_query_full(typed):
    assert chrono_query_key(typed) == "pref752026a123"


@pytest.mark.parametrize("typed", ["2026/A/123", "2026A000123", "2026-a-123"])
def test_chrono_query_tail(typed):
    assert chrono_query_key(typed) == "2026a123"


@pytest.mark.parametrize("typed", ["titre de séjour", "123", "2026"])
def test_chrono_query_none(typed):
    assert chrono_query_key(typed) is None


def test_hyphenated_place_is_phrase():
    parsed = parse_query("Saint-Denis")
    assert parsed.phrases == [["saint", "den"]]


def test_quoted_phrase_and_words():
    parsed = parse_query('"titre de séjour" renouvellement')
    assert parsed.phrases == [["titr", "de", "sejour"]]
    assert parsed.terms == ["renouvel"]


def test_stop_words_dropped_unless_alone():
    assert parse_query("la préfecture").terms == ["prefectur"]
    assert parse_query("ET OU").terms == ["et", "ou"]


@pytest.mark.parametrize("text", ['NOTRE DAME D OR', 'AR/2026-001', '"arrêté du 3 mars', 'dossier (suite', 'NOT', 'préfet*',
                                  'a" OR "b', 'x:y', '^~*()[]{}', "'\"", "NEAR(a b)"])
def test_expressions_contain_only_safe_tokens(text):
    parsed = parse_query(text)
    for expression in (fts5_expression(parsed), tsquery_expression(parsed)):
        stripped = expression.replace(" AND ", " ").replace(" & ", " ").replace(" <-> ", " ")
        assert set(stripped) <= set('abcdefghijklmnopqrstuvwxyz0123456789 "()'), expression

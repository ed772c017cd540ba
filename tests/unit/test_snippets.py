"""Snippets of search results: matched words in <mark>, everything else escaped, windows cut with an ellipsis."""

from __future__ import annotations

from app.search.analysis import parse_query
from app.search.snippets import excerpt, highlight, marked_terms


def _terms(text: str) -> set[str]:
    return parse_query(text).all_terms()


def test_highlight_marks_and_escapes():
    text = "Demande <b>urgente</b> & demandes d’aide : l’arrêté <script>x</script>"
    snippet = highlight(text, _terms("demande arrêté"))
    assert str(snippet) == (
        "<mark>Demande</mark> &lt;b&gt;urgente&lt;/b&gt; &amp; <mark>demandes</mark> d’aide : "
        "<mark>l’arrêté</mark> &lt;script&gt;x&lt;/script&gt;"
    )


def test_highlight_window_around_first_match():
    words = [f"mot{number}" for number in range(30)]
    text = " ".join([*words[:20], "subvention", *words[20:]])
    snippet = str(highlight(text, _terms("subvention"), max_words=12))
    assert snippet.startswith("…mot12 ")
    assert "<mark>subvention</mark>" in snippet
    assert snippet.endswith("mot22…")


def test_highlight_without_match():
    assert highlight("Nuisances sonores", _terms("subvention")) is None


def test_excerpt_cuts_and_escapes():
    assert str(excerpt("un <deux> trois quatre", max_words=2)) == "un &lt;deux…"
    assert str(excerpt("un deux", max_words=5)) == "un deux"
    assert str(excerpt("", max_words=5)) == ""


def test_number_letter_not_marked():
    terms = marked_terms(parse_query("PREF75/2026/A/000123").all_terms())

    snippet = str(highlight("Réponse à la demande PREF75/2026/A/000123 du 3 mars", terms))

    assert "<mark>à</mark>" not in snippet
    assert "<mark>PREF75</mark>" in snippet
    assert "<mark>000123</mark>" in snippet


def test_single_letter_query_still_marked():
    assert marked_terms({"a"}) == {"a"}

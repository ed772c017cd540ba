"""Snippets with the matched words highlighted, HTML-escaped, for the embedded backend."""

from __future__ import annotations

import re
from functools import lru_cache

from markupsafe import Markup, escape

from app.search.analysis import _APOSTROPHES, fold, stem, strip_elision

_WORD = re.compile(r"[^\W_]+(?:[" + _APOSTROPHES + r"][^\W_]+)*")
WORDS_BEFORE_FIRST_MATCH = 8


@lru_cache(maxsize=100_000)
def _word_stems(word: str) -> frozenset[str]:
    folded = strip_elision(fold(word))
    return frozenset(stem(part) for part in re.split("[" + _APOSTROPHES + "]", folded) if part)


def marked_terms(terms: set[str]) -> set[str]:
    """Return the terms to mark in snippets: single letters only when the query has no longer term.

    The "A" of a registration number such as PREF75/2026/A/000123 is a term of
    its phrase, and marking it marked every "a" and "à" of the snippet.
    """
    longer = {term for term in terms if len(term) > 1}
    return longer or terms


def highlight(text: str, terms: set[str], max_words: int = 40) -> Markup | None:
    """Return a window of ``text`` around its first matched word, with matches in <mark>; None if none matches.

    Every piece of ``text`` is escaped, so markup in a subject or a sender's
    name is shown as text. Reading stops one word after the window, so a long
    attachment text costs only the words before its first match.
    """
    tokens: list[re.Match[str]] = []
    first_match: int | None = None
    for token in _WORD.finditer(text):
        tokens.append(token)
        if first_match is None:
            if not _word_stems(token.group()).isdisjoint(terms):
                first_match = len(tokens) - 1
        elif len(tokens) > max(0, first_match - WORDS_BEFORE_FIRST_MATCH) + max_words:
            break
    if first_match is None:
        return None
    first = max(0, first_match - WORDS_BEFORE_FIRST_MATCH)
    last = min(len(tokens), first + max_words)
    marked = {index for index in range(first, last) if not _word_stems(tokens[index].group()).isdisjoint(terms)}
    return _render(text, tokens, first, last, marked)


def excerpt(text: str, max_words: int = 40) -> Markup:
    """Return the beginning of ``text``, escaped, when no word of it matched."""
    tokens = list(_WORD.finditer(text))
    return _render(text, tokens, 0, min(len(tokens), max_words), set())


def _render(text: str, tokens: list[re.Match[str]], first: int, last: int, marked: set[int]) -> Markup:
    """Return the words ``first`` to ``last`` of ``text`` with the ``marked`` ones in <mark>, everything escaped.

    The text between two marked words is escaped in one piece. Escaping each word
    and each gap apart made about 1,600 calls for a page of 20 results.
    """
    if not tokens:
        return Markup("")
    parts: list[str] = ["…" if first > 0 else ""]
    position = tokens[first].start()
    for index in sorted(marked):
        token = tokens[index]
        parts.append(str(escape(text[position:token.start()])))
        parts.append(f"<mark>{escape(token.group())}</mark>")
        position = token.end()
    if last == len(tokens):
        end = len(text)
    else:
        end = tokens[last - 1].end() if last > first else position
    parts.append(str(escape(text[position:end])))
    if last < len(tokens):
        parts.append("…")
    return Markup(" ".join("".join(parts).split()))

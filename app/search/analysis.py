"""French text analysis for the embedded index: one function for documents and queries.

Both sides go through :func:`analyse`, so a word matches whatever accents,
ligature (œ/oe), elided article (l', d', qu', with a straight or typographic
apostrophe), case or plural the writer and the searcher used. Tokens are
made only of ``[a-z0-9]``, so no user text can be read as FTS5 or tsquery
syntax.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import Stemmer

# Letters Unicode does not decompose into a base letter and a combining mark.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ø": "o", "Ø": "o", "đ": "d", "ł": "l"})
_APOSTROPHES = "'\u2019\u02bc\u2018`´"
# Articles and pronouns written with an apostrophe before a vowel.
_ELIDED = ("l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu")
_WORD = re.compile(r"[^\W_]+(?:[" + _APOSTROPHES + r"][^\W_]+)*", re.UNICODE)
# Words dropped from a query (never from the index) unless the query has nothing else.
STOP_WORDS = frozenset(
    "a au aux avec ce ces dans de des du elle en et il ils la le les leur leurs lui ma mais me "
    "mes mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes ton tu "
    "un une vos votre vous y c d j l m n s t".split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("french")


def fold(text: str) -> str:
    """Lower-case ``text``, expand ligatures and strip accents: "Œuvre Préfète" -> "oeuvre prefete"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return "".join(char for char in decomposed if not unicodedata.combining(char)).lower()


def strip_elision(word: str) -> str:
    """Drop an elided article from a folded word: "l'arrete" -> "arrete", "qu'il" -> "il"."""
    for index, char in enumerate(word):
        if char in _APOSTROPHES:
            if word[:index] in _ELIDED and index + 1 < len(word):
                return strip_elision(word[index + 1:])
            break
    return word


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Reduce a folded word to its stem, so that singular and plural, masculine and feminine match.

    A light plural and feminine strip comes before the Snowball French stemmer
    (PyStemmer), because Snowball alone stems "demande" and "demandées" apart
    once accents are folded.
    """
    if word.isdigit():
        return word.lstrip("0") or "0"
    if len(word) > 4:
        if word.endswith("eaux"):
            word = word[:-1]
        elif word.endswith("aux"):
            word = word[:-2] + "l"
        elif word.endswith(("s", "x")) and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
    word = _strip_final_e(word)
    return _strip_final_e(_stemmer().stemWord(word))


def _strip_final_e(word: str) -> str:
    while len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def words(text: str) -> list[str]:
    """Split ``text`` into folded words without elided articles, keeping digits apart from letters' runs."""
    result = []
    for match in _WORD.finditer(fold(text)):
        word = strip_elision(match.group())
        # An apostrophe that is not an elision ("aujourd'hui") joins two words.
        result.extend(part for part in re.split("[" + _APOSTROPHES + "]", word) if part)
    return result


def analyse(text: str) -> list[str]:
    """Return the index terms of ``text``, in order (positions matter for phrases)."""
    return [stem(word) for word in words(text)]


def analysed_text(text: str) -> str:
    return " ".join(analyse(text))


# --- Registration numbers -------------------------------------------------

_RUN = re.compile(r"[a-z]+|[0-9]+")
_CHRONO_LIKE = re.compile(r"[A-Za-z0-9]+(?:[\s/\-._]*[A-Za-z0-9]+)*")


def chrono_runs(value: str) -> list[str]:
    """Split a registration number into runs of letters or digits, digits without leading zeros."""
    runs = _RUN.findall(value.lower())
    return [run.lstrip("0") or "0" if run.isdigit() else run for run in runs]


def chrono_keys(chrono: str) -> tuple[str, str]:
    """Return the full key and the key of the last three runs (year, register, number) of ``chrono``.

    "PREF75/2026/A/000123" gives ("pref752026a123", "2026a123"), the keys a
    user typing the number with or without separators, prefix or leading zeros
    is matched against.
    """
    runs = chrono_runs(chrono)
    return "".join(runs), "".join(runs[-3:])


def chrono_query_key(text: str) -> str | None:
    """Return the key to match registration numbers for query ``text``, or None if it cannot be one."""
    stripped = text.strip()
    if not _CHRONO_LIKE.fullmatch(stripped) or not any(char.isdigit() for char in stripped):
        return None
    runs = chrono_runs(stripped)
    if len(runs) < 3:
        return None
    return "".join(runs)


# --- Queries ----------------------------------------------------------------


@dataclass
class ParsedQuery:
    """User text split into words that must all match and quoted phrases, plus a registration key."""

    text: str
    terms: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    chrono_key: str | None = None
    # The literal words and phrases, unanalysed, for engines that analyse text themselves.
    raw_words: list[str] = field(default_factory=list)
    raw_phrases: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.terms and not self.phrases and self.chrono_key is None

    def all_terms(self) -> set[str]:
        return set(self.terms).union(*self.phrases) if self.phrases else set(self.terms)


_QUOTED = re.compile(r"[\"«“„]([^\"»”“]*)[\"»”]")
_REFERENCE = re.compile(r"[^\s()\[\]{}]*\d[^\s()\[\]{}]*")
_APOSTROPHE_WORD = r"[^\W_]+(?:[" + _APOSTROPHES + r"][^\W_]+)*"
_HYPHENATED = re.compile(_APOSTROPHE_WORD + r"(?:[-‐‑]" + _APOSTROPHE_WORD + r")+")


def parse_query(text: str) -> ParsedQuery:
    """Read user text literally: quoted and hyphenated parts become phrases, the rest words.

    Operators (AND, OR, NOT, ``*``, brackets, slashes) are ordinary text here
    and an unbalanced quote is ignored, so no input raises an error.
    """
    text = (text or "")[:500]
    parsed = ParsedQuery(text=text, chrono_key=chrono_query_key(text))

    remainder = text
    for match in _QUOTED.finditer(text):
        _add_phrase(parsed, match.group(1))
    remainder = _QUOTED.sub(" ", remainder)
    # Reference numbers such as AR/2026-001 or 11/2025 are phrases of their parts.
    for match in _REFERENCE.finditer(remainder):
        if len(words(match.group())) > 1:
            _add_phrase(parsed, match.group())
    remainder = _REFERENCE.sub(lambda match: match.group() if len(words(match.group())) <= 1 else " ", remainder)
    for match in _HYPHENATED.finditer(remainder):
        _add_phrase(parsed, match.group())
    remainder = _HYPHENATED.sub(" ", remainder)

    plain = words(remainder)
    meaningful = [word for word in plain if word not in STOP_WORDS]
    kept = meaningful if (meaningful or parsed.phrases) else plain
    parsed.raw_words = kept
    parsed.terms = list(dict.fromkeys(stem(word) for word in kept))
    return parsed


def _add_phrase(parsed: ParsedQuery, text: str) -> None:
    terms = analyse(text)
    if len(terms) > 1:
        parsed.phrases.append(terms)
        parsed.raw_phrases.append(text.strip())
    elif terms:
        parsed.terms.append(terms[0])
        parsed.raw_words.append(words(text)[0])

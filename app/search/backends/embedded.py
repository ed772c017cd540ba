"""The embedded backend: SQLite FTS5 or PostgreSQL text search, joined to ``mail`` in each statement.

Visibility is the SQL rule itself (visible_mail_clause), so results, counts
and facets never include mail the user may not see, and any change to the
rule applies here at once.

A search reads the matching mails newest first (by mail id) and stops after
EXACT_LIMIT + 1 rows, so a word found in most of the register costs about
EXACT_LIMIT rows instead of every match. Up to EXACT_LIMIT matches, the
total, the ranking and the facets are exact. Past it, the total is a lower
bound and the page, the ranking and the facets cover the EXACT_LIMIT newest
matches, and the search page tells the user so and asks for one more word or filter.
NOTE: past EXACT_LIMIT, "newest" means registered last, so a date sort may
miss a mail registered long after its arrival date.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import date
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    Float,
    Integer,
    Select,
    column,
    delete,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from app.core.types import utcnow
from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import visible_mail_clause
from app.organisation.context import UserContext
from app.search.analysis import ParsedQuery, parse_query
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
from app.search.models import SearchDocument
from app.search.snippets import excerpt, highlight, marked_terms

FACET_SIZE = 20
# The column of each facet; candidate rows carry it under the facet's name.
FACET_COLUMNS: dict[str, Any] = {
    "mail_type": Mail.mail_type,
    "category": Mail.category,
    "status": Mail.status,
    "department": Mail.handling_department_id,
}
# Execution option of a statement: the planner methods turned off while it runs (PostgreSQL only).
PLANNER_METHODS_OFF = "estafette_planner_methods_off"
CHRONO_BONUS = 1000.0
# On PostgreSQL, words estimated to match at least this many index rows are read newest first
# whatever the size of the index (see _reads_newest_first).
COMMON_MATCHES = 2 * EXACT_LIMIT
# On PostgreSQL, a word read from the index that is estimated to match more index rows than this
# is read in ranges of mail ids, newest first (see _ranged_text_rows).
RANGED_MATCHES = 4 * EXACT_LIMIT
# The first range covers about this many times the matches needed (at the estimated density), and
# each next range this many times more ids than the one before.
# NOTE: both set from two searches at 1,000,000 mails, each read in one range. "cœur" took 28.9 ms
# per search with a first range of twice the matches and 36.4 ms with four times.
FIRST_RANGE_MATCHES = 2
RANGE_GROWTH = 4
# PostgreSQL settings for the statements of one search, back to their defaults after it.
PLANNER_SETTINGS = {
    # psycopg prepares a statement run five times, and PostgreSQL may then plan it once for any
    # text: that generic plan reads every row newest first even for a word found nowhere.
    "plan_cache_mode": "force_custom_plan",
    # PostgreSQL 15 prefers a merge join that walks the mail primary key through every mail over
    # reading each of at most EXACT_LIMIT + 1 matches by primary key.
    "enable_mergejoin": "off",
    # Starting parallel workers took 15 to 30 ms before the first row at 100,000 mails, more
    # than the whole of most searches, which read at most a few thousand rows.
    "max_parallel_workers_per_gather": "0",
    # The pages a search reads are in memory after the first searches. At the default 4,
    # PostgreSQL hashed all 27,306 matches of "séjour" instead of testing the 3,921 mails
    # with status "new" by primary key, and searches with a filter took up to 1.5 times longer.
    "random_page_cost": "1.1",
}


# PostgreSQL's estimates that choose how a search reads the index (the rows matching a word, the
# rows of the index), kept this many seconds per process. They follow PostgreSQL's statistics,
# which change when it analyzes the table and slowly as the table grows. Reading the estimate of a word
# took 0.19 ms at p50 at 1,000,000 mails. A stale estimate may only choose the slower reading: all
# readings return the same mails.
PLANNER_FACT_SECONDS = 300.0
PLANNER_FACT_MAX_ENTRIES = 10_000
_planner_facts: dict[str, tuple[float, Any]] = {}
_planner_facts_lock = threading.Lock()


def _planner_fact(key: str, read: Callable[[], Any]) -> Any:
    """Return the value kept under ``key`` if younger than PLANNER_FACT_SECONDS, else ``read()`` and keep it."""
    now = time.monotonic()
    entry = _planner_facts.get(key)
    if entry is not None and now - entry[0] < PLANNER_FACT_SECONDS:
        return entry[1]
    value = read()
    with _planner_facts_lock:
        if len(_planner_facts) >= PLANNER_FACT_MAX_ENTRIES:
            _planner_facts.clear()
        _planner_facts[key] = (now, value)
    return value


def forget_planner_facts() -> None:
    with _planner_facts_lock:
        _planner_facts.clear()


class _LocalSettings:
    """PostgreSQL settings of one search, each sent with ``SET LOCAL`` only when a statement needs it changed.

    Before each statement that reads candidates, apply() sends in one round trip what differs
    from the settings already set, and reset() sets every one back to its default after the
    search. A search for a word found nowhere made five round trips when each statement set
    and reset its own settings, and makes three.
    """

    def __init__(self) -> None:
        self._set: dict[str, str] = {}

    def apply(self, settings: dict[str, str]) -> None:
        """Set exactly ``settings`` for the next statements, sending only the differences."""
        changes = [f"{name} = {value}" for name, value in settings.items() if self._set.get(name) != value]
        changes += [f"{name} TO DEFAULT" for name in self._set if name not in settings]
        _set_locally(changes)
        self._set = dict(settings)

    def reset(self) -> None:
        _set_locally(f"{name} TO DEFAULT" for name in self._set)
        self._set = {}


# The settings of the search running in this thread, None on SQLite.
_search_settings: ContextVar[_LocalSettings | None] = ContextVar("estafette_search_settings", default=None)


def _set_locally(settings: Iterable[str]) -> None:
    """Run ``SET LOCAL`` for each of ``settings`` (our constants, never user input) in one round trip."""
    statements = "; ".join(f"SET LOCAL {setting}" for setting in settings)
    if statements:
        # Without parameters psycopg sends the text as one simple query, which may hold several statements.
        db.session.execute(text(statements))


def _past(column: Any, mail_id: int, newest_first: bool) -> ColumnElement[bool]:
    """Return the condition on ``column`` that keeps the mail ids read after ``mail_id`` in the window's order."""
    return column < mail_id if newest_first else column > mail_id


class _RangedText(NamedTuple):
    """The index-first text statement of a frequent word, to run over ranges of mail ids (_ranged_text_rows)."""

    statement: Callable[[int | None, int | None], Select[Any]]
    estimated_matches: int
    # The newest id to read, or None for the newest indexed mail.
    newest: int | None = None


class _Candidate(NamedTuple):
    """One matching mail: its score and the columns that facets and sorts read."""

    id: int
    score: float
    mail_type: str
    category: str
    status: str
    department: int
    arrival_date: date


# Positions of the columns in the rows of every candidate statement (_columns) and in _Candidate.
# Reading a SQLAlchemy row by position took a tenth of the time of reading it by name.
COLUMN = {name: position for position, name in enumerate(_Candidate._fields)}


def fts5_expression(parsed: ParsedQuery) -> str:
    """Return an FTS5 MATCH expression: every word and every phrase, each quoted.

    Terms contain only [a-z0-9] (see analysis.py), so quoting makes any input
    a literal and nothing the user typed is FTS5 syntax.
    """
    groups = [f'"{term}"' for term in parsed.terms] + ['"' + " ".join(phrase) + '"' for phrase in parsed.phrases]
    return " AND ".join(groups)


def tsquery_expression(parsed: ParsedQuery) -> str:
    """Return a to_tsquery() expression: words joined by &, phrases by <-> (followed by)."""
    groups = list(parsed.terms) + ["(" + " <-> ".join(phrase) + ")" for phrase in parsed.phrases]
    return " & ".join(groups)


class EmbeddedBackend:
    name = "embedded"
    in_database = True

    # --- Writing --------------------------------------------------------------------------------

    def write(self, documents: list[MailDocument], deleted_ids: list[int]) -> None:
        """Upsert and delete index rows; the caller's write transaction commits them."""
        if deleted_ids:
            db.session.execute(delete(SearchDocument).where(SearchDocument.mail_id.in_(deleted_ids)))
        ids = [document.mail_id for document in documents]
        existing = {
            row.mail_id: row
            for row in db.session.execute(select(SearchDocument).where(SearchDocument.mail_id.in_(ids))).scalars()
        } if ids else {}
        for document in documents:
            row = existing.get(document.mail_id)
            if row is None:
                row = SearchDocument(mail_id=document.mail_id)
                db.session.add(row)
            row.chrono_key = document.chrono_key
            row.chrono_tail = document.chrono_tail
            row.terms = document.terms()
            row.display_text = document.display_text()
            row.attachment_text = document.attachment_text
            row.mail_version = document.mail_version
            row.indexed_at = utcnow()
        db.session.flush()

    def count(self) -> int:
        return int(db.session.execute(select(func.count()).select_from(SearchDocument)).scalar_one())

    def indexed_versions(self) -> dict[int, int]:
        return dict(db.session.execute(select(SearchDocument.mail_id, SearchDocument.mail_version)).tuples().all())

    # --- Searching ------------------------------------------------------------------------------

    def search(self, user: UserContext, request: SearchRequest, today: date | None = None) -> SearchResult:
        parsed = parse_query(request.text)
        filters = resolve_filters(request, today or date.today())
        if parsed.is_empty and request.text.strip():
            # Text with no searchable word (only punctuation or stop words): nothing matches.
            return SearchResult(total=0, hits=[], facets={name: [] for name in FACETS}, page=request.page,
                                page_size=request.page_size)

        if db.engine.dialect.name != "postgresql":
            return self._search(user, request, parsed, filters)
        settings = _LocalSettings()
        token = _search_settings.set(settings)
        try:
            result = self._search(user, request, parsed, filters)
        except SQLAlchemyError:
            # The transaction failed, and its settings end with it.
            raise
        except Exception:
            # Any other error leaves the transaction open: the rest of the request plans without them.
            settings.reset()
            raise
        finally:
            _search_settings.reset(token)
        settings.reset()
        return result

    def _search(self, user: UserContext, request: SearchRequest, parsed: ParsedQuery,
                filters: ResolvedFilters) -> SearchResult:
        common = [visible_mail_clause(user), *self._filter_conditions(request, filters)]
        facet_values = self._facet_values(request, filters)
        facet_conditions = self._facet_conditions(facet_values)
        facets: dict[str, list[tuple[str, int]]] = {}
        if len(facet_conditions) == 1 and parsed.chrono_key is None:
            # One filter that is also a facet: its facet's window, without it, gives the first rows.
            (name, condition), = facet_conditions.items()
            facet_rows, facets_complete = self._window(parsed, request, common, filtered=len(common) > 1)
            rows, complete = self._narrowed_window(parsed, request, common, (name, condition, facet_values[name]),
                                                   facet_rows, facets_complete)
            facets_complete = facets_complete and complete
            for facet in FACETS:
                facets[facet] = self._facet(facet_rows if facet == name else rows, facet)
            return self._result(request, parsed, rows, complete, facets, facets_complete)

        # common[0] is the visibility rule, the other conditions are filters the user chose.
        rows, complete = self._window(parsed, request, [*common, *facet_conditions.values()],
                                      filtered=len(common) > 1 or bool(facet_conditions))
        facets_complete = complete
        for name in FACETS:
            if name in facet_conditions:
                # A facet counts under every filter but its own, so its other values stay offered.
                others = [condition for key, condition in facet_conditions.items() if key != name]
                facet_rows, facet_complete = self._window(parsed, request, [*common, *others],
                                                          filtered=len(common) > 1 or bool(others))
                facets_complete = facets_complete and facet_complete
            else:
                facet_rows = rows
            facets[name] = self._facet(facet_rows, name)
        return self._result(request, parsed, rows, complete, facets, facets_complete)

    def _result(self, request: SearchRequest, parsed: ParsedQuery, rows: list[Any], complete: bool,
                facets: dict[str, list[tuple[str, int]]], facets_complete: bool) -> SearchResult:
        ordered = self._ordered(rows, request)
        page = ordered[request.offset:request.offset + request.page_size]
        hits = self._hits([row.id for row in page], {row.id: row.score for row in page}, parsed)
        return SearchResult(total=len(rows) if complete else EXACT_LIMIT, hits=hits, facets=facets, page=request.page,
                            page_size=request.page_size, total_is_exact=complete, facets_are_exact=facets_complete)

    def _narrowed_window(self, parsed: ParsedQuery, request: SearchRequest, common: list[ColumnElement[bool]],
                         facet_filter: tuple[str, ColumnElement[bool], set[Any]], wider: list[Any],
                         wider_complete: bool) -> tuple[list[Any], bool]:
        """Return the window under ``common`` and one facet filter, from the window ``wider`` without that filter.

        Both windows read the mails in the same order, so the rows of ``wider`` that
        pass the filter are the first rows of the narrower window. Only the rest is
        read, past the last row of ``wider``: the mails that ``wider`` read are not
        read twice.
        """
        name, condition, allowed = facet_filter
        first = [row for row in wider if row[COLUMN[name]] in allowed]
        if wider_complete:
            return first, True
        # wider has EXACT_LIMIT rows here, so first leaves room for at least one more. The share of
        # wider that passes the filter estimates how rare the matches are under it.
        rest, complete = self._window(parsed, request, [*common, condition], filtered=True,
                                      limit=EXACT_LIMIT + 1 - len(first), past_id=wider[-1].id,
                                      match_share=max(len(first), 1) / len(wider))
        return first + rest, complete

    def _window(self, parsed: ParsedQuery, request: SearchRequest, conditions: list[ColumnElement[bool]],
                filtered: bool, limit: int | None = None, past_id: int | None = None,
                match_share: float = 1.0) -> tuple[list[Any], bool]:
        """Return the matching mails under ``conditions``, all of them or the ``limit`` - 1 newest, and whether all.

        Each part of the query is read newest first (oldest first for the date_asc
        sort) and stops after ``limit`` rows, EXACT_LIMIT + 1 by default. So a word
        found in most of the register reads about EXACT_LIMIT rows, not every match.
        The visibility rule and the filters are conditions of the same statement.
        With ``past_id``, only the mail past it in that order is read, and a
        registration number is not looked up.
        """
        newest_first = request.sort != "date_asc"
        limit = EXACT_LIMIT + 1 if limit is None else limit
        parts = []
        if parsed.terms or parsed.phrases:
            parts.append((
                self._text_candidates(parsed, conditions, newest_first, limit, filtered, past_id, match_share), 0.0
            ))
        if parsed.chrono_key is not None and past_id is None:
            # An exact registration number comes before any text match.
            parts.append((self._chrono_candidates(parsed.chrono_key, conditions, limit), CHRONO_BONUS))
        if not parts:
            parts.append((self._all_candidates(conditions, newest_first, limit, past_id), 0.0))

        complete = True
        results = []
        for statement, bonus in parts:
            if isinstance(statement, _RangedText):
                found = self._ranged_text_rows(statement, limit)
            else:
                found = self._rows(statement)
            if len(found) == limit:
                complete = False
                del found[limit - 1:]
            results.append((found, bonus))
        if len(results) == 1 and results[0][1] == 0.0:
            # The rows have the attributes of _Candidate already.
            return results[0][0], complete

        by_id: dict[int, _Candidate] = {}
        for found, bonus in results:
            for row in found:
                earlier = by_id.get(row[0])
                score = float(row[1] or 0.0) + bonus + (earlier.score if earlier else 0.0)
                by_id[row[0]] = _Candidate(row[0], score, *row[2:])
        return list(by_id.values()), complete

    @staticmethod
    def _rows(statement: Select[Any]) -> list[Any]:
        settings = _search_settings.get()
        if settings is not None:
            methods_off = statement.get_execution_options().get(PLANNER_METHODS_OFF, ())
            settings.apply(PLANNER_SETTINGS | dict.fromkeys(methods_off, "off"))
        # On the session's connection: the rows are plain columns, and the session's ORM
        # layer took about 1.5 ms to turn 1,001 of them into rows.
        return db.session.connection().execute(statement).all()

    def _ranged_text_rows(self, ranged: _RangedText, limit: int) -> list[Any]:
        """Return the rows of the index-first statement read in ranges of mail ids, newest first, up to ``limit``.

        The GIN index gives every match of a word, and PostgreSQL reads each one's
        row before sorting them: 22,652 rows and 43 ms for "cœur" at 1,000,000
        mails. With a range of ids as well, it combines the GIN index with the
        primary key and reads only the matches inside the range: 2,104 rows for
        the newest 90,300 ids, 16.7 ms against 93.7 ms in EXPLAIN ANALYZE.

        The first range covers about FIRST_RANGE_MATCHES times ``limit`` matches
        at the estimated density. Each next range is older and RANGE_GROWTH times
        wider. Reading stops at ``limit`` rows or at the oldest mail. Ranges come
        newest first and each statement keeps its rows newest first, so the rows
        are those that one statement over every id would give.
        """
        newest = ranged.newest
        if newest is None:
            newest = db.session.execute(select(func.max(SearchDocument.mail_id))).scalar()
        if newest is None:
            return []
        span = max(limit, int(FIRST_RANGE_MATCHES * limit * newest / max(ranged.estimated_matches, 1)))
        found: list[Any] = []
        upper: int | None = None
        while len(found) < limit:
            lower = (upper if upper is not None else newest) - span
            found.extend(self._rows(ranged.statement(lower if lower > 0 else None, upper)))
            if lower <= 0:
                break
            upper, span = lower, span * RANGE_GROWTH
        return found[:limit]

    @staticmethod
    def _columns(score: ColumnElement[Any]) -> list[ColumnElement[Any]]:
        return [
            Mail.id.label("id"),
            score.label("score"),
            Mail.mail_type.label("mail_type"),
            Mail.category.label("category"),
            Mail.status.label("status"),
            Mail.handling_department_id.label("department"),
            Mail.arrival_date.label("arrival_date"),
        ]

    def _text_candidates(self, parsed: ParsedQuery, conditions: list[ColumnElement[bool]], newest_first: bool,
                         limit: int, filtered: bool, past_id: int | None = None,
                         match_share: float = 1.0) -> Select[Any] | _RangedText:
        """Return the statement of the text matches under ``conditions``.

        ``match_share`` is the share of the matches that the caller expects the
        conditions to keep, when the caller has it. The reading path is then chosen
        as for a word with that many matches.
        NOTE: chosen by measurement, not by a model. Newest first tests about
        limit * rows / (matches * share) rows, and the index path reads the
        matches of each id range, a cost that also grows as the share falls.
        For "réclamation" with the incoming category at 1,000,000 mails (share
        about a third), judging by the kept matches took 48 to 55 ms at p95,
        and judging by all the matches (the square root of the share in the
        rule) 60 to 67 ms, in runs of 25 searches timed in turn.
        """
        if db.engine.dialect.name == "sqlite":
            # The FTS table drives the join in rowid order and the mail table is read by primary key.
            fts = table("search_document_fts", column("rowid", Integer))
            score = literal_column("-bm25(search_document_fts)", Float)
            match = text("search_document_fts MATCH :expression").bindparams(expression=fts5_expression(parsed))
            order = fts.c.rowid.desc() if newest_first else fts.c.rowid.asc()
            statement = (
                select(*self._columns(score))
                .select_from(fts)
                .join(Mail, Mail.id == fts.c.rowid)
                .where(match, *conditions)
                .order_by(order)
                .limit(limit)
            )
            return statement if past_id is None else statement.where(_past(fts.c.rowid, past_id, newest_first))
        expression = tsquery_expression(parsed)
        vector: ColumnElement[Any] = literal_column("search_document.terms_vector")
        query = func.to_tsquery(literal_column("'simple'::regconfig"), expression)
        document = SearchDocument.__table__
        order = document.c.mail_id.desc() if newest_first else document.c.mail_id.asc()
        matches = int(min(self._estimated_matches(word) for word in parsed.all_terms()) * match_share)
        if self._reads_newest_first(matches, limit):
            # A common word: its matches come often enough that reading the index rows newest
            # first, testing each, reaches the limit soon. The rank is computed outside the
            # cut: when the planner joins every match to the filtered mails and sorts them,
            # ranking inside it would read the tsvector of every joined row.
            window: Any = (
                select(Mail.id, Mail.mail_type, Mail.category, Mail.status, Mail.handling_department_id,
                       Mail.arrival_date, vector.label("terms_vector"))
                .select_from(document)
                .join(Mail, Mail.id == document.c.mail_id)
                .where(vector.op("@@")(query), *conditions)
                .order_by(order)
                .limit(limit)
            )
            if past_id is not None:
                window = window.where(_past(document.c.mail_id, past_id, newest_first))
            window = window.subquery("window")
            newest = (
                select(window.c.id, func.ts_rank(window.c.terms_vector, query).label("score"), window.c.mail_type,
                       window.c.category, window.c.status, window.c.handling_department_id.label("department"),
                       window.c.arrival_date)
                .select_from(window)
                .order_by(window.c.id.desc() if newest_first else window.c.id.asc())
            )
            if filtered:
                return newest
            # Without filters, the planner trusts its own estimate for several words, which
            # multiplies their frequencies: it read all 10,405 matches of "enquête publique"
            # through the GIN index and sorted them (41 ms) instead of testing 9,776 rows
            # newest first (13 ms). With filters it may rightly read the filtered mail first.
            return newest.execution_options(**{PLANNER_METHODS_OFF: ("enable_bitmapscan",)})

        # A rarer word: the GIN index gives all its matches, sorted newest first. Mail is then
        # read by primary key in that order until ``limit`` visible ones are found, and only
        # those are ranked. OFFSET 0 makes the planner plan the sorted matches on their own, so
        # it neither tests the word row by row newest first (most of the table when matches are
        # few) nor joins every match before sorting.
        # A phrase makes the index recheck each match on its stored tsvector for word positions,
        # so the index looks up only the words, which needs no recheck. The phrase is then tested
        # on the rows read in order, on the tsvector that the subquery carries.
        words = func.to_tsquery(literal_column("'simple'::regconfig"), " & ".join(sorted(parsed.all_terms())))
        hit_columns = [document.c.mail_id, vector.label("terms_vector")] if parsed.phrases else [document.c.mail_id]

        def index_first(above: int | None, up_to: int | None) -> Select[Any]:
            """Return the statement over the mail ids greater than ``above`` and up to ``up_to``, None for no bound."""
            in_range: list[ColumnElement[bool]] = [vector.op("@@")(words)]
            if above is not None:
                in_range.append(document.c.mail_id > above)
            if up_to is not None:
                in_range.append(document.c.mail_id <= up_to)
            if past_id is not None:
                in_range.append(_past(document.c.mail_id, past_id, newest_first))
            hits = select(*hit_columns).where(*in_range).order_by(order).offset(0).subquery("text_hits")
            hit_order = hits.c.mail_id.desc() if newest_first else hits.c.mail_id.asc()
            visible_hits = (
                select(Mail.id, Mail.mail_type, Mail.category, Mail.status, Mail.handling_department_id,
                       Mail.arrival_date)
                .select_from(hits)
                .join(Mail, Mail.id == hits.c.mail_id)
                .where(*conditions)
            )
            if parsed.phrases:
                visible_hits = visible_hits.where(hits.c.terms_vector.op("@@")(query))
            window = visible_hits.order_by(hit_order).limit(limit).subquery("window")

            # _window drops the rows past its limit from the end, so they must come in window order here too.
            # Hash joins off: the planner counts the visibility rule's hashed subquery once per mail read
            # by primary key, so with a filter it preferred hashing every open mail. With "manifestation"
            # and the overdue band at 1,000,000 mails that read 206,366 mails (224 ms) to keep 3,466,
            # where reading the 1,791 newest matches by primary key took 110 ms.
            return (
                select(window.c.id, func.ts_rank(vector, query).label("score"), window.c.mail_type,
                       window.c.category, window.c.status, window.c.handling_department_id.label("department"),
                       window.c.arrival_date)
                .select_from(window)
                .join(document, document.c.mail_id == window.c.id)
                .order_by(window.c.id.desc() if newest_first else window.c.id.asc())
                .execution_options(**{PLANNER_METHODS_OFF: ("enable_hashjoin",)})
            )

        if newest_first and matches > RANGED_MATCHES:
            return _RangedText(index_first, matches, None if past_id is None else past_id - 1)
        return index_first(None, None)

    def _reads_newest_first(self, matches: int, limit: int) -> bool:
        """Return whether testing index rows newest first should cost less than reading every match.

        Newest first tests about ``limit * rows / matches`` rows before it has ``limit``
        matches, and the GIN index path reads every match. Both cost about 1 microsecond a row
        (bench.search at 100,000 mails, 2 shared cores), so newest first wins when matches
        exceed sqrt(limit * rows): about 10,000 at 100,000 mails and 32,000 at 1,000,000.
        The matches are estimated by the rarest word, an upper bound: PostgreSQL multiplies
        the frequencies of the words as if they were independent, and estimated 4,777 matches
        for "demande de titre de séjour", found in 22,168 of 100,000 generated mails.
        NOTE: only the window narrowed by one facet filter scales the matches by the share that
        passes it (see _narrowed_window). Elsewhere the rule ignores the filters, which make
        newest first test more rows, so with selective filters it picks newest first more
        often than it should.
        """
        if matches < COMMON_MATCHES:
            return False
        rows = _planner_fact("rows", lambda: db.session.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'search_document'::regclass")
        ).scalar_one())
        # reltuples is -1 before the first ANALYZE or VACUUM of the table.
        return matches * matches > limit * max(float(rows), 0.0)

    @staticmethod
    def _estimated_matches(expression: str) -> int:
        """Return PostgreSQL's estimate of the index rows matching ``expression``, from its statistics."""

        def read() -> int:
            plan = db.session.execute(
                text("EXPLAIN (FORMAT JSON) SELECT 1 FROM search_document WHERE terms_vector @@ to_tsquery('simple', :expression)"),
                {"expression": expression},
            ).scalar_one()
            if isinstance(plan, str):
                plan = json.loads(plan)
            return int(plan[0]["Plan"]["Plan Rows"])

        return int(_planner_fact(f"matches:{expression}", read))

    def _chrono_candidates(self, key: str, conditions: list[ColumnElement[bool]], limit: int) -> Select[Any]:
        document = SearchDocument.__table__
        return (
            select(*self._columns(literal(0.0, Float)))
            .select_from(document)
            .join(Mail, Mail.id == document.c.mail_id)
            .where(or_(document.c.chrono_key == key, document.c.chrono_tail == key), *conditions)
            .limit(limit)
        )

    def _all_candidates(self, conditions: list[ColumnElement[bool]], newest_first: bool, limit: int,
                        past_id: int | None = None) -> Select[Any]:
        statement = (
            select(*self._columns(literal(0.0, Float)))
            .where(*conditions)
            .order_by(Mail.id.desc() if newest_first else Mail.id.asc())
            .limit(limit)
        )
        return statement if past_id is None else statement.where(_past(Mail.id, past_id, newest_first))

    @staticmethod
    def _facet_values(request: SearchRequest, filters: ResolvedFilters) -> dict[str, set[Any]]:
        """Return the values allowed by the filters that are also facets, by facet name."""
        values: dict[str, set[Any]] = {}
        if request.mail_types:
            values["mail_type"] = set(request.mail_types)
        if request.categories:
            values["category"] = set(request.categories)
        if request.statuses:
            values["status"] = set(request.statuses)
        if filters.department_ids is not None:
            values["department"] = set(filters.department_ids)
        return values

    @staticmethod
    def _facet_conditions(values: dict[str, set[Any]]) -> dict[str, ColumnElement[bool]]:
        """Return the conditions of _facet_values(), by facet name; a row's attribute of that name has the column's value."""
        return {
            name: FACET_COLUMNS[name].in_(sorted(allowed)) if allowed else false() for name, allowed in values.items()
        }

    @staticmethod
    def _filter_conditions(request: SearchRequest, filters: ResolvedFilters) -> list[ColumnElement[bool]]:
        """Return the filters that are not facets: arrival dates and due-date band."""
        conditions: list[ColumnElement[bool]] = []
        if request.arrival_from:
            conditions.append(Mail.arrival_date >= request.arrival_from)
        if request.arrival_to:
            conditions.append(Mail.arrival_date <= request.arrival_to)
        if filters.due_missing:
            conditions.append(Mail.due_date.is_(None))
        if filters.due_from:
            conditions.append(Mail.due_date >= filters.due_from)
        if filters.due_to:
            conditions.append(Mail.due_date <= filters.due_to)
        if filters.open_only:
            conditions.append(Mail.closed_at.is_(None))
        return conditions

    @staticmethod
    def _facet(rows: list[Any], name: str) -> list[tuple[str, int]]:
        counts = Counter(map(itemgetter(COLUMN[name]), rows))
        if name == "department":
            return department_facet({str(value): count for value, count in counts.items()}, FACET_SIZE)
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [(str(value), count) for value, count in ordered[:FACET_SIZE]]

    @staticmethod
    def _ordered(rows: list[Any], request: SearchRequest) -> list[Any]:
        """Return ``rows`` in the requested order: relevance, then newest arrival, then newest mail."""
        if request.sort == "date_asc":
            return sorted(rows, key=itemgetter(COLUMN["arrival_date"], COLUMN["id"]))
        if request.sort == "date_desc":
            return sorted(rows, key=itemgetter(COLUMN["arrival_date"], COLUMN["id"]), reverse=True)
        return sorted(rows, key=itemgetter(COLUMN["score"], COLUMN["arrival_date"], COLUMN["id"]), reverse=True)

    @staticmethod
    def _hits(ids: list[int], scores: dict[int, float], parsed: ParsedQuery) -> list[SearchHit]:
        if not ids:
            return []
        rows = db.session.connection().execute(
            select(Mail.id, Mail.chrono, Mail.subject, Mail.arrival_date, Mail.status, Mail.mail_type,
                   SearchDocument.display_text, SearchDocument.attachment_text)
            .outerjoin(SearchDocument, SearchDocument.mail_id == Mail.id)
            .where(Mail.id.in_(ids))
        ).all()
        by_id = {row.id: row for row in rows}
        terms = marked_terms(parsed.all_terms())
        hits = []
        for mail_id in ids:
            row = by_id[mail_id]
            display = row.display_text or row.subject
            snippet = highlight(display, terms) or highlight(row.attachment_text or "", terms) or excerpt(display)
            hits.append(SearchHit(row.id, row.chrono, row.subject, row.arrival_date, row.status, row.mail_type,
                                  snippet, scores.get(mail_id)))
        return hits

"""The embedded backend: SQLite FTS5 or PostgreSQL text search, joined to ``mail`` in one query.

Visibility is the SQL rule itself (visible_mail_clause), so results, counts
and facets never include mail the user may not see, and any change to the
rule applies here at once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Float, Integer, Select, case, delete, desc, false, func, literal, or_, select, text, true
from sqlalchemy.sql.elements import ColumnElement

from app.core.types import utcnow
from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import visible_mail_clause
from app.organisation.context import UserContext
from app.search.analysis import ParsedQuery, parse_query
from app.search.criteria import (
    FACETS,
    ResolvedFilters,
    SearchHit,
    SearchRequest,
    SearchResult,
    resolve_filters,
)
from app.search.documents import MailDocument
from app.search.models import SearchDocument
from app.search.snippets import excerpt, highlight

FACET_SIZE = 20


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
        matched = self._matched(user, request, parsed, filters).subquery("matched")

        total = db.session.execute(select(func.count()).select_from(matched)).scalar_one()
        facets = {name: self._facet(matched, name) for name in FACETS}
        page = db.session.execute(
            select(matched.c.id, matched.c.score)
            .order_by(*self._order(matched, request))
            .limit(request.page_size)
            .offset(request.offset)
        ).all()
        hits = self._hits([row.id for row in page], {row.id: row.score for row in page}, parsed)
        return SearchResult(total=total, hits=hits, facets=facets, page=request.page, page_size=request.page_size)

    def _text_hits(self, parsed: ParsedQuery) -> Any:
        if not parsed.terms and not parsed.phrases:
            return None
        if db.engine.dialect.name == "sqlite":
            statement = text(
                "SELECT rowid AS mail_id, -bm25(search_document_fts) AS score "
                "FROM search_document_fts WHERE search_document_fts MATCH :expression"
            ).bindparams(expression=fts5_expression(parsed))
        else:
            statement = text(
                "SELECT mail_id, ts_rank(terms_vector, to_tsquery('simple', :expression)) AS score "
                "FROM search_document WHERE terms_vector @@ to_tsquery('simple', :expression)"
            ).bindparams(expression=tsquery_expression(parsed))
        return statement.columns(mail_id=Integer, score=Float).subquery("text_hits")

    def _matched(self, user: UserContext, request: SearchRequest, parsed: ParsedQuery, filters: ResolvedFilters) -> Select[Any]:
        hits = self._text_hits(parsed)
        score: ColumnElement[Any] = literal(0.0, Float)
        statement = select(Mail.id).select_from(Mail)

        if parsed.chrono_key is not None:
            document = SearchDocument.__table__
            exact = or_(document.c.chrono_key == parsed.chrono_key, document.c.chrono_tail == parsed.chrono_key)
            statement = statement.join(document, document.c.mail_id == Mail.id)
            if hits is not None:
                statement = statement.outerjoin(hits, hits.c.mail_id == Mail.id).where(or_(hits.c.mail_id.is_not(None), exact))
                score = func.coalesce(hits.c.score, 0.0)
            else:
                statement = statement.where(exact)
            # An exact registration number comes before any text match.
            score = score + case((exact, 1000.0), else_=0.0)
        elif hits is not None:
            statement = statement.join(hits, hits.c.mail_id == Mail.id)
            score = hits.c.score
        elif request.text.strip():
            # Text with no searchable word (only punctuation or stop words): nothing matches.
            statement = statement.where(false())

        statement = statement.where(visible_mail_clause(user), *self._filter_conditions(request, filters))
        return statement.with_only_columns(
            Mail.id.label("id"),
            score.label("score"),
            Mail.mail_type.label("mail_type"),
            Mail.category.label("category"),
            Mail.status.label("status"),
            Mail.handling_department_id.label("department"),
            Mail.arrival_date.label("arrival_date"),
        )

    @staticmethod
    def _filter_conditions(request: SearchRequest, filters: ResolvedFilters) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if request.mail_types:
            conditions.append(Mail.mail_type.in_(request.mail_types))
        if request.categories:
            conditions.append(Mail.category.in_(request.categories))
        if request.statuses:
            conditions.append(Mail.status.in_(request.statuses))
        if filters.department_ids is not None:
            conditions.append(Mail.handling_department_id.in_(filters.department_ids) if filters.department_ids else false())
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
        return conditions or [true()]

    @staticmethod
    def _facet(matched: Any, name: str) -> list[tuple[str, int]]:
        column = matched.c[name]
        rows = db.session.execute(
            select(column, func.count().label("count"))
            .group_by(column)
            .order_by(desc("count"), column)
            .limit(FACET_SIZE)
        ).all()
        return [(str(value), int(count)) for value, count in rows]

    @staticmethod
    def _order(matched: Any, request: SearchRequest) -> list[Any]:
        if request.sort == "date_asc":
            return [matched.c.arrival_date, matched.c.id]
        if request.sort == "date_desc":
            return [desc(matched.c.arrival_date), desc(matched.c.id)]
        return [desc(matched.c.score), desc(matched.c.arrival_date), desc(matched.c.id)]

    @staticmethod
    def _hits(ids: list[int], scores: dict[int, float], parsed: ParsedQuery) -> list[SearchHit]:
        if not ids:
            return []
        rows = db.session.execute(
            select(Mail, SearchDocument.display_text, SearchDocument.attachment_text)
            .outerjoin(SearchDocument, SearchDocument.mail_id == Mail.id)
            .where(Mail.id.in_(ids))
        ).all()
        by_id = {row.Mail.id: row for row in rows}
        terms = parsed.all_terms()
        hits = []
        for mail_id in ids:
            row = by_id[mail_id]
            display = row.display_text or row.Mail.subject
            snippet = highlight(display, terms) or highlight(row.attachment_text or "", terms) or excerpt(display)
            mail = row.Mail
            hits.append(SearchHit(mail.id, mail.chrono, mail.subject, mail.arrival_date, mail.status, mail.mail_type,
                                  snippet, scores.get(mail_id)))
        return hits

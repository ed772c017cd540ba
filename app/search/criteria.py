"""A search as the user asks it (text, filters, sort, page) and as backends return it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select

from app.core.parsing import ParseError, parse_date
from app.extensions import db
from app.organisation.models import Department

SORTS = ("relevance", "date_desc", "date_asc")
DUE_BANDS = ("overdue", "week", "later", "none")
FACETS = ("mail_type", "category", "status", "department")
MAX_PAGE = 500
MAX_PAGE_SIZE = 100
# Matches counted exactly, by every backend. Past this number the total reads "more than
# EXACT_LIMIT", and the page, its ranking and the facets cover the EXACT_LIMIT newest matches
# by mail id (the oldest for the date_asc sort) only.
EXACT_LIMIT = 1000


@dataclass
class SearchRequest:
    """What the search box and the filters ask for; every list filter means "any of these"."""

    text: str = ""
    mail_types: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    # Department code; its sub-departments are included.
    department: str | None = None
    arrival_from: date | None = None
    arrival_to: date | None = None
    due_band: str | None = None
    sort: str = "relevance"
    page: int = 1
    page_size: int = 20

    @classmethod
    def from_args(cls, args: Any, page_size: int = 20) -> tuple[SearchRequest, dict[str, str]]:
        """Read a request from query-string arguments; return it with the errors of invalid values.

        Dates are read day first (31/12/2026) or ISO (2026-12-31) and always
        written back ISO by :meth:`to_args`, so paging or sorting never changes them.
        """
        errors: dict[str, str] = {}
        request = cls(
            text=(args.get("q") or "")[:500],
            mail_types=[value for value in args.getlist("type") if value],
            categories=[value for value in args.getlist("category") if value],
            statuses=[value for value in args.getlist("status") if value],
            department=args.get("department") or None,
            page_size=page_size,
        )
        for name in ("arrival_from", "arrival_to"):
            raw = (args.get(name) or "").strip()
            if raw:
                try:
                    setattr(request, name, parse_date(raw))
                except ParseError:
                    errors[name] = str(_l("Invalid date %(value)s: write it as 31/12/2026.", value=raw))
        if request.arrival_from and request.arrival_to and request.arrival_from > request.arrival_to:
            errors["arrival_to"] = str(_l("The end date is before the start date."))
        band = args.get("due")
        if band in DUE_BANDS:
            request.due_band = band
        sort = args.get("sort")
        request.sort = sort if sort in SORTS else ("relevance" if request.text.strip() else "date_desc")
        try:
            request.page = min(max(int(args.get("page", 1)), 1), MAX_PAGE)
        except (TypeError, ValueError):
            request.page = 1
        return request, errors

    def to_args(self, **changes: Any) -> dict[str, Any]:
        """Return the query-string arguments of this request, with ``changes`` applied."""
        args: dict[str, Any] = {
            "q": self.text or None,
            "type": self.mail_types or None,
            "category": self.categories or None,
            "status": self.statuses or None,
            "department": self.department,
            "arrival_from": self.arrival_from.isoformat() if self.arrival_from else None,
            "arrival_to": self.arrival_to.isoformat() if self.arrival_to else None,
            "due": self.due_band,
            "sort": self.sort,
            "page": self.page if self.page > 1 else None,
        }
        args.update(changes)
        return {key: value for key, value in args.items() if value not in (None, "", [])}

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def department_facet(counts: dict[str, int], size: int) -> list[tuple[str, int]]:
    """Return the department facet from the count of each handling department: the ``size`` largest, with sub-departments.

    The department filter selects the chosen department and those below it,
    so each department's count adds the counts of its sub-departments found
    in ``counts``: the count shown is the number of results its link gives.
    """
    if len(counts) <= 1:
        # One department has no other below it to add: the department table is not read.
        return list(counts.items())[:size]
    paths = {str(row.id): row.path for row in db.session.execute(select(Department.id, Department.path))}
    rolled = {}
    for value, count in counts.items():
        path = paths.get(value)
        if path is None:
            rolled[value] = count
            continue
        rolled[value] = sum(other_count for other, other_count in counts.items() if paths.get(other, "").startswith(path))
    ordered = sorted(rolled.items(), key=lambda item: (-item[1], item[0]))
    return ordered[:size]


@dataclass(frozen=True)
class ResolvedFilters:
    """Filters with department codes turned into ids and due bands into date ranges."""

    department_ids: list[int] | None
    due_from: date | None
    due_to: date | None
    due_missing: bool
    open_only: bool


def resolve_filters(request: SearchRequest, today: date) -> ResolvedFilters:
    department_ids = None
    if request.department:
        path = db.session.execute(select(Department.path).where(Department.code == request.department)).scalar()
        department_ids = []
        if path is not None:
            department_ids = list(db.session.execute(select(Department.id).where(Department.path.startswith(path))).scalars())
    due_from = due_to = None
    if request.due_band == "overdue":
        due_to = today - timedelta(days=1)
    elif request.due_band == "week":
        due_from, due_to = today, today + timedelta(days=7)
    elif request.due_band == "later":
        due_from = today + timedelta(days=8)
    return ResolvedFilters(
        department_ids=department_ids,
        due_from=due_from,
        due_to=due_to,
        due_missing=request.due_band == "none",
        open_only=request.due_band in ("overdue", "week"),
    )


@dataclass
class SearchHit:
    mail_id: int
    chrono: str
    subject: str
    arrival_date: date
    status: str
    mail_type: str
    snippet: Markup
    score: float | None = None


@dataclass
class SearchResult:
    """One page of hits, the total and the facet counts, all over the mail the user may see."""

    total: int
    hits: list[SearchHit]
    # Facet name -> [(value, count)], largest count first.
    facets: dict[str, list[tuple[str, int]]]
    page: int
    page_size: int
    # False past EXACT_LIMIT matches: ``total`` is then EXACT_LIMIT, a lower bound, and the page
    # and facets cover the EXACT_LIMIT newest matches only.
    total_is_exact: bool = True
    facets_are_exact: bool = True

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))

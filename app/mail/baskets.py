"""Baskets (bannettes): the declared, structured queries of mail lists.

A basket's filter is built from its declaration's variables (scope, statuses,
assignee, role in the distribution list, due-date band, closing age, current
step of a visa circuit, acknowledgements of receipt pending or sent) for one
user, and is always combined with the visibility rule.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import g, has_request_context
from sqlalchemy import Select, and_, any_, false, func, or_, select, true, union_all
from sqlalchemy.sql.elements import ColumnElement, True_

from app.configuration.loader import Configuration
from app.configuration.specs import BasketSpec
from app.core.errors import NotFound
from app.core.types import utcnow
from app.deadlines.calendar import get_calendar
from app.distribution.models import COPY, OPINION, DistributionEntry, ReadMark
from app.extensions import db
from app.mail.menu_counts import cached_counts, install_menu_counts_invalidation
from app.mail.models import Mail
from app.mail.visibility import visible_mail_clause
from app.organisation.context import UserContext
from app.organisation.models import Department

install_menu_counts_invalidation()


@dataclass
class BasketPage:
    basket: BasketSpec
    items: list[Mail]
    total: int
    page: int
    page_size: int
    # Ids of the listed mails the user received in copy and has not marked as read.
    unread_ids: set[int] = field(default_factory=set)
    # The date each listed mail's opinion asked of the user or their departments is due, for the
    # column "opinion_due"; the earliest when several are asked.
    opinion_due: dict[int, date] = field(default_factory=dict)
    # "First Last" of the listed mails' assignees by user id, for the column "assignee".
    assignee_names: dict[int, str] = field(default_factory=dict)
    # Codes of the listed mails' handling departments by id, for the column "department".
    department_codes: dict[int, str] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


def direction_department_ids(user: UserContext) -> list[int]:
    """Return the ids of the top-level department above the user's primary department and of its whole tree."""
    if user.primary_department_id is None:
        return []
    path = db.session.execute(
        select(Department.path).where(Department.id == user.primary_department_id)
    ).scalar_one_or_none()
    if not path:
        return []
    top = "/" + path.strip("/").split("/")[0] + "/"
    return list(db.session.execute(select(Department.id).where(Department.path.startswith(top))).scalars())


def _scope_clause(basket: BasketSpec, user: UserContext, direction: list[int] | None = None) -> ColumnElement[bool]:
    if basket.scope == "my_departments_tree":
        if not user.scope_department_ids:
            return false()
        return Mail.handling_department_id.in_(sorted(user.scope_department_ids))
    if basket.scope == "my_primary_department":
        if user.primary_department_id is None:
            return false()
        return Mail.handling_department_id == user.primary_department_id
    if basket.scope == "my_direction":
        if direction is None:
            direction = direction_department_ids(user)
        return Mail.handling_department_id.in_(direction) if direction else false()
    if basket.scope == "assigned_to_me":
        return Mail.assignee_id == user.user_id
    if basket.scope == "any_visible":
        return true()
    return Mail.created_by_id == user.user_id


def _addressed_to(user: UserContext) -> ColumnElement[bool]:
    targets = DistributionEntry.user_id == user.user_id
    if user.scope_department_ids:
        return targets | DistributionEntry.department_id.in_(sorted(user.scope_department_ids))
    return targets


def _distribution_clause(basket: BasketSpec, user: UserContext) -> ColumnElement[bool]:
    if basket.distribution_role == "copy":
        entries = select(DistributionEntry.mail_id).where(DistributionEntry.role == COPY, _addressed_to(user))
    elif basket.distribution_role == "opinion_to_give":
        entries = select(DistributionEntry.mail_id).where(
            DistributionEntry.role == OPINION, DistributionEntry.answered_at.is_(None), _addressed_to(user)
        )
    else:
        entries = select(DistributionEntry.mail_id).where(
            DistributionEntry.role == OPINION, DistributionEntry.answered_at.is_(None),
            DistributionEntry.requested_by_id == user.user_id,
        )
    if db.engine.dialect.name == "postgresql":
        # With IN (subquery), PostgreSQL 15 joined the entries to the mail by scanning the whole
        # of ix_mail_basket. From an array it looks the listed mails up by primary key.
        return Mail.id == any_(func.array(entries.scalar_subquery()))
    return Mail.id.in_(entries)


def _today() -> date:
    from app.mail.operations import today_in_paris

    return today_in_paris()


def _due_clause(basket: BasketSpec, today: date) -> ColumnElement[bool]:
    if basket.due == "overdue":
        return Mail.due_date < today
    # NOTE: working days are counted on the metropolitan calendar, whatever the user's department.
    limit = get_calendar("metropole").add_working_days(today, basket.due_soon_working_days)
    return and_(Mail.due_date >= today, Mail.due_date <= limit)


@dataclass(frozen=True)
class BasketQuery:
    """A basket's filters for one user and the visibility rule, kept apart so that the count can be split.

    ``within_scope`` is true when the basket stays inside the user's
    departments: there every mail that is not confidential is visible by the
    rule itself.
    """

    filters: tuple[ColumnElement[bool], ...]
    rule: ColumnElement[bool]
    # The rule where the query keeps confidential mail alone: without the departments' branch,
    # which is never true there (visible_mail_clause's confidential_only).
    confidential_rule: ColumnElement[bool]
    within_scope: bool
    # Whether ix_mail_basket_visibility serves the filters; it does not hold closed_at.
    split_count: bool
    # A direction that reaches beyond the user's departments: its departments inside them and
    # outside them, and the filters without the department condition, for the count. Empty otherwise.
    inside_departments: tuple[int, ...] = ()
    outside_departments: tuple[int, ...] = ()
    filters_but_department: tuple[ColumnElement[bool], ...] = ()
    # The handling departments the scope lists, and the basket's statuses; empty when the scope is not a department list.
    departments: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()

    def condition(self) -> ColumnElement[bool]:
        """Return the filters and the rule, testing ``confidential`` first inside the user's departments.

        Testing it first spares the database the other branches for most mail.
        ix_mail_basket and ix_mail_basket_closed cover all the columns the rule
        tests, so no branch needs the table row.
        """
        if self.within_scope:
            return and_(*self.filters, or_(Mail.confidential.is_(false()), self.confidential_rule))
        return and_(*self.filters, self.rule)

    def count_statement(self) -> Select:
        """Return the count query, split in two inside the user's departments.

        There the mail that is not confidential is all visible, so
        ix_mail_basket_visibility counts it by a range of the index alone, and
        the rule is tested on confidential mail only.
        """
        if self.outside_departments and self.split_count:
            # Inside the user's departments as below, and the whole rule on the other departments' mail only.
            inside = Mail.handling_department_id.in_(self.inside_departments)
            outside = Mail.handling_department_id.in_(self.outside_departments)
            parts = [
                (inside, Mail.confidential.is_(false())),
                (inside, Mail.confidential.is_(true()), self.confidential_rule),
                (outside, self.rule),
            ]
            counts = [
                select(func.count()).select_from(Mail).where(*self.filters_but_department, *part).scalar_subquery()
                for part in parts
            ]
            return select(counts[0] + counts[1] + counts[2])
        if not (self.within_scope and self.split_count) or isinstance(self.rule, True_):
            return select(func.count()).select_from(Mail).where(self.condition())
        plain = select(func.count()).select_from(Mail).where(*self.filters, Mail.confidential.is_(false()))
        confidential = select(func.count()).select_from(Mail).where(
            *self.filters, Mail.confidential.is_(true()), self.confidential_rule
        )
        return select(plain.scalar_subquery() + confidential.scalar_subquery())

    def one_scan_count_statement(self) -> Select:
        """Return the count as one scan with the rule as a filter: planned faster, read slower.

        For an empty basket of an agent at 1,000,000 mails on PostgreSQL it took
        0.15 ms of planning against 0.27 ms for count_statement(). Counting
        17,000 mails took 2.6 ms against 1.6 ms.
        """
        return select(func.count()).select_from(Mail).where(self.condition())

    def capped_count_statement(self, cap: int) -> Select:
        """Return a count that stops at ``cap``: the database reads at most ``cap`` matching entries."""
        matching = select(Mail.id).where(self.condition()).limit(cap).subquery()
        return select(func.count()).select_from(matching)


def basket_condition(basket: BasketSpec, user: UserContext) -> ColumnElement[bool]:
    """Return the basket's filter, always combined with the visibility rule."""
    return basket_query(basket, user).condition()


def basket_query(basket: BasketSpec, user: UserContext) -> BasketQuery:
    """Return the basket's filters for ``user`` and the visibility rule."""
    # NOTE: basket_page() caches the result per _statement_key(). A filter that reads anything
    # outside that key (the clock, the database, another user's context) must be excluded there.
    direction = direction_department_ids(user) if basket.scope == "my_direction" else None
    # The department condition comes first: the split of a direction below drops it.
    conditions = [_scope_clause(basket, user, direction), _status_clause(basket)]
    if basket.assignee == "me":
        conditions.append(Mail.assignee_id == user.user_id)
    elif basket.assignee == "nobody":
        conditions.append(Mail.assignee_id.is_(None))
    if basket.distribution_role is not None:
        conditions.append(_distribution_clause(basket, user))
    if basket.due is not None:
        conditions.append(_due_clause(basket, _today()))
    if basket.signature_book:
        from app.signature.operations import current_step_clause

        conditions.append(current_step_clause(user))
    if basket.acknowledgement is not None:
        from app.documents.acknowledgements import acknowledgement_clause

        conditions.append(acknowledgement_clause(basket.acknowledgement))
    if basket.closed_within_days is not None:
        conditions.append(Mail.closed_at >= utcnow() - timedelta(days=basket.closed_within_days))
    # Inside the user's departments, only confidential mail reaches the distribution-list test of the rule.
    within_scope = _scope_is_within_user_departments(basket, user, direction)
    # A distribution-role filter also leaves few mails to test: those of the user's entries of that role.
    # Testing each one's own entries cost chef.sejour's "Avis en attente" count 1.3 ms at 1M mails,
    # against 3.4 ms to read and hash all the entries of the user and their departments (6,606).
    per_mail = within_scope or basket.distribution_role is not None
    if _filters_imply_visibility(basket):
        rule = confidential_rule = true()
    else:
        rule = visible_mail_clause(user, per_mail=per_mail)
        confidential_rule = visible_mail_clause(user, per_mail=per_mail, confidential_only=True)
    split_count = basket.closed_within_days is None
    departments = tuple(_scope_departments(basket, user, direction))
    statuses = tuple(basket.statuses)
    if direction and not within_scope and not isinstance(rule, True_):
        # The direction's departments outside the user's are the only ones whose mail needs the whole rule.
        inside = tuple(sorted(set(direction) & user.scope_department_ids))
        outside = tuple(sorted(set(direction) - user.scope_department_ids))
        return BasketQuery(
            tuple(conditions), rule, confidential_rule, False, split_count, inside, outside, tuple(conditions[1:]),
            departments, statuses,
        )
    return BasketQuery(
        tuple(conditions), rule, confidential_rule, within_scope, split_count, departments=departments,
        statuses=statuses,
    )


def _scope_departments(basket: BasketSpec, user: UserContext, direction: list[int] | None) -> list[int]:
    """Return the handling departments that ``_scope_clause`` lists, or [] for a scope that is not a department list."""
    if basket.scope == "my_departments_tree":
        return sorted(user.scope_department_ids)
    if basket.scope == "my_primary_department":
        return [user.primary_department_id] if user.primary_department_id is not None else []
    if basket.scope == "my_direction":
        return sorted(direction or [])
    return []


def _status_clause(basket: BasketSpec) -> ColumnElement[bool]:
    if basket.distribution_role is not None and db.engine.dialect.name == "sqlite":
        # `status || ''` keeps SQLite 3.40 off the indexes led by status, which it chose for these
        # baskets and then scanned every mail of the statuses. The user's entries then lead the
        # query and SQLite reads the listed mails by primary key.
        return Mail.status.concat("").in_(basket.statuses)
    return Mail.status.in_(basket.statuses)


def _filters_imply_visibility(basket: BasketSpec) -> bool:
    """Return whether every mail the basket's filters select for a user passes that user's own branch of the rule.

    Mail the user registered or is assigned, and mail whose distribution list
    has an entry for the user or their departments, is visible by the rule
    itself, so testing the rule again only slows the query down.
    """
    return basket.scope in ("registered_by_me", "assigned_to_me") or basket.distribution_role in (
        "copy", "opinion_to_give",
    )


def _scope_is_within_user_departments(basket: BasketSpec, user: UserContext, direction: list[int] | None = None) -> bool:
    if basket.scope == "my_departments_tree":
        return True
    if basket.scope == "my_primary_department":
        return user.primary_department_id in user.scope_department_ids
    if basket.scope == "my_direction":
        return set(direction if direction is not None else direction_department_ids(user)) <= user.scope_department_ids
    return False


def _ordered(statement: Select, basket: BasketSpec) -> Select:
    if basket.sort == "due_date":
        return statement.order_by(Mail.due_date.asc().nulls_last(), Mail.id.asc())
    if basket.sort == "arrival_date":
        return statement.order_by(Mail.arrival_date.asc(), Mail.id.asc())
    if basket.sort == "-arrival_date":
        return statement.order_by(Mail.arrival_date.desc(), Mail.id.desc())
    if basket.sort == "-closed_at":
        return statement.order_by(Mail.closed_at.desc().nulls_last(), Mail.id.desc())
    return statement.order_by(Mail.chrono_year.desc(), Mail.chrono_number.desc())


def may_open_basket(basket: BasketSpec, user: UserContext) -> bool:
    return not basket.permissions or any(user.can(permission) for permission in basket.permissions)


def get_basket(configuration: Configuration, basket_id: str, user: UserContext | None = None) -> BasketSpec:
    basket = configuration.baskets.get(basket_id)
    if basket is None or (user is not None and not may_open_basket(basket, user)):
        raise NotFound()
    return basket


def unread_mail_ids(user: UserContext, mail_ids: list[int]) -> set[int]:
    """Return the ids among ``mail_ids`` that reached the user in copy and that the user has not marked as read."""
    if not mail_ids:
        return set()
    in_copy = set(
        db.session.execute(
            select(DistributionEntry.mail_id).where(
                DistributionEntry.mail_id.in_(mail_ids), DistributionEntry.role == COPY, _addressed_to(user)
            )
        ).scalars()
    )
    read = set(
        db.session.execute(
            select(ReadMark.mail_id).where(ReadMark.mail_id.in_(mail_ids), ReadMark.user_id == user.user_id)
        ).scalars()
    )
    return in_copy - read


def basket_page(
    user: UserContext, configuration: Configuration, basket_id: str, page: int, page_size: int
) -> BasketPage:
    basket = get_basket(configuration, basket_id, user)
    statements = _basket_statements(basket, user, configuration)
    total = statements.count()
    page = max(1, page)
    items: list[Mail] = []
    # A page past the count would be empty: an empty basket costs one statement instead of two.
    if (page - 1) * page_size < total:
        items = list(db.session.execute(statements.page(page, page_size, total)).scalars())
    unread = unread_mail_ids(user, [mail.id for mail in items]) if basket.unread_marks else set()
    opinion_due = _opinion_due_dates(user, [mail.id for mail in items]) if "opinion_due" in basket.columns else {}
    assignee_names = _assignee_names(items) if "assignee" in basket.columns else {}
    department_codes = _department_codes(items) if "department" in basket.columns else {}
    return BasketPage(basket, items, total, page, page_size, unread, opinion_due, assignee_names, department_codes)


def _opinion_due_dates(user: UserContext, mail_ids: list[int]) -> dict[int, date]:
    """Return when the opinions asked of ``user`` or their departments on ``mail_ids``, not given yet, are due."""
    if not mail_ids:
        return {}
    rows = db.session.execute(
        select(DistributionEntry.mail_id, func.min(DistributionEntry.due_date))
        .where(DistributionEntry.mail_id.in_(mail_ids), DistributionEntry.role == OPINION,
               DistributionEntry.answered_at.is_(None), DistributionEntry.due_date.is_not(None), _addressed_to(user))
        .group_by(DistributionEntry.mail_id)
    ).all()
    return {mail_id: due for mail_id, due in rows}


def _assignee_names(items: list[Mail]) -> dict[int, str]:
    """Return "First Last" of the assignees of ``items`` by user id, read in one statement.

    Reading ``mail.assignee`` row by row would load each user apart and cost
    an ORM lazy load per row even for the users already in the session.
    """
    from flask_appbuilder.security.sqla.models import User

    user_ids = sorted({mail.assignee_id for mail in items if mail.assignee_id is not None})
    if not user_ids:
        return {}
    rows = db.session.execute(select(User.id, User.first_name, User.last_name).where(User.id.in_(user_ids)))
    return {user_id: f"{first_name} {last_name}" for user_id, first_name, last_name in rows}


def _department_codes(items: list[Mail]) -> dict[int, str]:
    """Return the codes of the handling departments of ``items`` by id, read in one statement."""
    department_ids = sorted({mail.handling_department_id for mail in items})
    if not department_ids:
        return {}
    rows = db.session.execute(select(Department.id, Department.code).where(Department.id.in_(department_ids)))
    return {department_id: code for department_id, code in rows}


class _BasketStatements:
    """A basket's count and first-page statements for one user, built once and run by many requests.

    Building them, and SQLAlchemy's cache key of each new statement object,
    cost more CPU time than running them: 2.5 ms of the 5 ms that
    basket_page() took for an agent's "À traiter" on PostgreSQL at 1,000,000
    mails (time.process_time, bench.run's database). Later pages are built at
    each request, because caching them would multiply the memory for pages
    seldom read.
    """

    def __init__(self, basket: BasketSpec, query: BasketQuery):
        self.basket = basket
        self.query = query
        self._count = query.count_statement()
        self._one_scan_count: Select | None = None
        # The count this object last returned, shared by the requests that reuse it: a basket's
        # size changes slowly, so it chooses the form of the next count.
        self.last_total: int | None = None
        # The first page in both forms, keyed by its size and by whether it merges index ranges.
        self._first_pages: dict[tuple[int, bool], Select] = {}

    def count(self) -> int:
        statement = self._count
        if self.last_total is not None and self.last_total < ONE_SCAN_COUNT_MAX_TOTAL:
            if self._one_scan_count is None:
                self._one_scan_count = self.query.one_scan_count_statement()
            statement = self._one_scan_count
        total = int(db.session.execute(statement).scalar_one())
        self.last_total = total
        return total

    def page(self, page: int, page_size: int, total: int) -> Select:
        if page != 1:
            return basket_page_statement(self.basket, self.query, page, page_size, total)
        # The count only chooses between the two forms of the statement, so the key contains that choice.
        key = (page_size, _merges_page_by_index_range(self.basket, self.query, page_size, total))
        statement = self._first_pages.get(key)
        if statement is None:
            statement = self._first_pages[key] = basket_page_statement(self.basket, self.query, 1, page_size, total)
        return statement


# Below this many mails at the last count, a basket is counted in one scan (one_scan_count_statement).
# NOTE: an estimate between two measured points. An empty basket was faster in one scan, and one
# of 17,000 mails was slower. The size where both forms cost the same was not measured.
ONE_SCAN_COUNT_MAX_TOTAL = 1000

# Users' baskets whose statements a process keeps, the least recently used dropped first. An
# entry with its first page took 140 KB for an agent's "À traiter" and 255 KB for a head of three
# departments (tracemalloc, PostgreSQL, bench.run's users at 1,000,000 mails), so at most about 26 MB.
STATEMENT_CACHE_MAX_ENTRIES = 100

_statements_lock = threading.Lock()
_statements: OrderedDict[tuple[Any, ...], _BasketStatements] = OrderedDict()
# The configuration the cached statements were built from. Another one (a new version applied, or
# a test's) empties the cache, since a basket's declaration may differ under the same id.
_statements_configuration: list[Configuration | None] = [None]


def _statement_key(basket: BasketSpec, user: UserContext) -> tuple[Any, ...] | None:
    """Return the cache key of the basket's statements for ``user``, or None when they must be built afresh.

    The key contains every input of basket_query() for the baskets it accepts:
    the user's id, permissions and departments, today's date (due-date
    bands) and the database dialect. Baskets whose filters read anything else
    are not cached. A direction reads its departments from the database, the
    signature book reads the delegations and a closing age reads the clock.
    The baskets of a user who acts for an absent agent today are not cached
    either, because the rule then reads the absent agent's rights.
    """
    if (
        user.delegator_ids != ()
        or basket.scope == "my_direction"
        or basket.signature_book
        or basket.closed_within_days is not None
    ):
        return None
    return (
        basket.id, db.engine.dialect.name, _today(), user.user_id, user.permissions,
        user.department_ids, user.scope_department_ids, user.primary_department_id,
    )


def _basket_statements(basket: BasketSpec, user: UserContext, configuration: Configuration) -> _BasketStatements:
    """Return the basket's statements for ``user``, from the per-process cache when its key allows it."""
    key = _statement_key(basket, user)
    if key is None:
        return _BasketStatements(basket, basket_query(basket, user))
    with _statements_lock:
        if _statements_configuration[0] is not configuration:
            _statements.clear()
            _statements_configuration[0] = configuration
        cached = _statements.get(key)
        # The same declaration object, in case a basket was replaced inside the same configuration.
        if cached is not None and cached.basket is basket:
            _statements.move_to_end(key)
            return cached

    statements = _BasketStatements(basket, basket_query(basket, user))
    with _statements_lock:
        if _statements_configuration[0] is configuration:
            _statements[key] = statements
            while len(_statements) > STATEMENT_CACHE_MAX_ENTRIES:
                _statements.popitem(last=False)
    return statements


def forget_basket_statements() -> None:
    """Empty the per-process cache of basket statements."""
    with _statements_lock:
        _statements.clear()
        _statements_configuration[0] = None


def basket_page_statement(
    basket: BasketSpec, query: BasketQuery, page: int, page_size: int, total: int | None = None
) -> Select:
    """Return the query of one page: the page's ids first, then their rows.

    The ids are sorted from the basket index alone (ix_mail_basket covers the
    scope, the sort and the visibility columns), so the database sorts small
    index entries and reads the table for the listed mails only, instead of
    sorting whole rows of every mail in the basket. ``total`` is the basket's
    count when the caller has it; a small basket is then sorted in one piece.
    """
    offset = (max(1, page) - 1) * page_size
    if _merges_page_by_index_range(basket, query, offset + page_size, total):
        ids = _merged_page_ids(query, offset, page_size)
    else:
        ids = _ordered(select(Mail.id).where(query.condition()), basket).limit(page_size).offset(offset)
    return _ordered(select(Mail).where(Mail.id.in_(ids)), basket)


# Bounds of the merged form, measured on PostgreSQL 15 at 1,000,000 mails (bench/BASKETS.md): a
# basket of 1,800 mails sorted in one piece in 2.2 ms against 4.5 ms merged. Every range adds
# planning time. NOTE: the range limit is an estimate: 18 ranges (three departments) were faster
# than one sort, and 24 ranges with read_all about as fast (7.7 ms against 7.3 ms).
MERGED_PAGE_MAX_RANGES = 24
MERGED_PAGE_MAX_ROWS = 500
MERGED_PAGE_MIN_TOTAL = 5000


def _merges_page_by_index_range(basket: BasketSpec, query: BasketQuery, rows: int, total: int | None) -> bool:
    """Return whether the page ids are read as ordered index ranges, one per department and status.

    ix_mail_basket is ordered by (handling_department_id, status, due_date, id),
    but with ``status IN (...)`` PostgreSQL 15 reads every entry of the basket
    and sorts them: 58,000 entries and 10 to 20 ms for an agent's "À traiter"
    at 1,000,000 mails. Each (department, status) range is already in due-date
    order, so the first ``rows`` entries of each, merged, give the page. Only
    inside the user's departments, or with read_all, do these ranges need no
    visibility test (see _merged_page_ids). SQLite keeps the single statement.
    """
    return (
        db.engine.dialect.name == "postgresql"
        and basket.sort == "due_date"
        and bool(query.departments)
        and bool(query.statuses)
        and (query.within_scope or isinstance(query.rule, True_))
        and len(query.departments) * len(query.statuses) <= MERGED_PAGE_MAX_RANGES
        and rows <= MERGED_PAGE_MAX_ROWS
        and (total is None or total >= MERGED_PAGE_MIN_TOTAL)
    )


def _merged_page_ids(query: BasketQuery, offset: int, page_size: int) -> Select:
    """Return the ids of one page, due date first, merged from ordered index ranges.

    Inside the user's departments the rule shows all mail that is not
    confidential, so its ranges, one per department and status, test no rule.
    The basket's confidential mail, a few percent, is one more range tested by
    the rule, as in count_statement(). With the rule in every range, PostgreSQL
    hashed the user's distribution entries again in each range that met a
    confidential mail: about 1.7 ms each for 6,600 entries.
    """
    rows = offset + page_size

    def ordered_range(*conditions: ColumnElement[bool]) -> Select:
        return (
            select(Mail.id, Mail.due_date)
            .where(*conditions)
            .order_by(Mail.due_date.asc().nulls_last(), Mail.id.asc())
            .limit(rows)
        )

    unrestricted = isinstance(query.rule, True_)
    not_confidential = () if unrestricted else (Mail.confidential.is_(false()),)
    ranges = [
        ordered_range(
            Mail.handling_department_id == department_id, Mail.status == status, *query.filters, *not_confidential
        )
        for department_id in query.departments
        for status in query.statuses
    ]
    if not unrestricted:
        ranges.append(ordered_range(*query.filters, Mail.confidential.is_(true()), query.confidential_rule))
    merged = union_all(*ranges).subquery()
    return (
        select(merged.c.id)
        .order_by(merged.c.due_date.asc().nulls_last(), merged.c.id.asc())
        .limit(page_size)
        .offset(offset)
    )


def count_basket(user: UserContext, basket: BasketSpec) -> int:
    return int(db.session.execute(basket_query(basket, user).count_statement()).scalar_one())


# Menu counts stop here and show "999+": every page shows them, and an exact
# count of a basket of 100,000 mails would cost more than the page itself.
MENU_COUNT_CAP = 1000


def basket_counts(user: UserContext, configuration: Configuration) -> list[tuple[BasketSpec, int]]:
    """Return every basket the user may open with its count capped at MENU_COUNT_CAP, in menu order.

    The counts are computed once per request, and kept a few seconds per user
    by app.mail.menu_counts, which drops them at every write committed in this process.
    """
    cached = getattr(g, "estafette_basket_counts", None) if has_request_context() else None
    if cached is not None:
        return cached
    counts = counts_for_user(user, configuration)
    if has_request_context():
        g.estafette_basket_counts = counts
    return counts


def counts_for_user(user: UserContext, configuration: Configuration) -> list[tuple[BasketSpec, int]]:
    """Return the capped count of every basket ``user`` may open, kept a few seconds per user.

    Unlike basket_counts(), it keeps nothing in the request, so it serves
    another user than the one logged in, such as an absent agent.
    """
    return cached_counts(user, configuration.version, _today(), lambda: compute_basket_counts(user, configuration))


def compute_basket_counts(user: UserContext, configuration: Configuration) -> list[tuple[BasketSpec, int]]:
    """Count every basket the user may open, capped at MENU_COUNT_CAP, in one statement and without cache."""
    baskets = [
        basket
        for basket in sorted(configuration.baskets.values(), key=lambda item: (item.order, item.id))
        if may_open_basket(basket, user)
    ]
    if not baskets:
        return []
    # One statement of one capped count per basket: one round trip instead of one per basket.
    counts = db.session.execute(
        select(*(basket_query(basket, user).capped_count_statement(MENU_COUNT_CAP).scalar_subquery() for basket in baskets))
    ).one()
    return [(basket, int(count)) for basket, count in zip(baskets, counts, strict=True)]


@dataclass
class RegisterFilter:
    """Filters of the register list; dates are legal dates, compared as dates."""

    mail_type: str | None = None
    category: str | None = None
    arrival_from: date | None = None
    arrival_to: date | None = None
    status: str | None = None
    # The handling department and every department below it.
    department_ids: list[int] | None = None


def _register_condition(user: UserContext, filters: RegisterFilter) -> ColumnElement[bool]:
    conditions = [visible_mail_clause(user)]
    if filters.mail_type:
        conditions.append(Mail.mail_type == filters.mail_type)
    if filters.category:
        conditions.append(Mail.category == filters.category)
    if filters.arrival_from:
        conditions.append(Mail.arrival_date >= filters.arrival_from)
    if filters.arrival_to:
        conditions.append(Mail.arrival_date <= filters.arrival_to)
    if filters.status:
        conditions.append(Mail.status == filters.status)
    if filters.department_ids is not None:
        conditions.append(Mail.handling_department_id.in_(filters.department_ids))
    return and_(*conditions)


def register_page(user: UserContext, filters: RegisterFilter, page: int, page_size: int) -> tuple[list[Mail], int]:
    """Return one page of the visible register, newest number first, and the total count."""
    condition = _register_condition(user, filters)
    total = int(db.session.execute(select(func.count()).select_from(Mail).where(condition)).scalar_one())
    statement = (
        select(Mail).where(condition)
        .order_by(Mail.arrival_date.desc(), Mail.id.desc())
        .limit(page_size).offset((max(1, page) - 1) * page_size)
    )
    return list(db.session.execute(statement).scalars()), total


def register_rows(user: UserContext, filters: RegisterFilter, limit: int) -> list[Any]:
    """Return at most ``limit`` rows of the visible register for an export, newest first.

    Each row has the number, category, type, subject, arrival and due dates,
    status, the handling department's code and the assignee's name.
    """
    from flask_appbuilder.security.sqla.models import User

    statement = (
        select(Mail.chrono, Mail.category, Mail.mail_type, Mail.subject, Mail.arrival_date, Mail.due_date,
               Mail.status, Department.code, User.first_name, User.last_name)
        .join(Department, Department.id == Mail.handling_department_id)
        .outerjoin(User, User.id == Mail.assignee_id)
        .where(_register_condition(user, filters))
        .order_by(Mail.arrival_date.desc(), Mail.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(statement))


def basket_column_labels() -> dict[str, str]:
    """Return the translated heading of every basket column."""
    from flask_babel import gettext as _

    return {
        "chrono": _("Number"), "mail_type": _("Type"), "subject": _("Subject"), "arrival_date": _("Arrival"),
        "due_date": _("Due date"), "status": _("Status"), "assignee": _("Assignee"),
        "department": _("Department"), "priority": _("Priority"), "unread": _("Read"), "closed_at": _("Closed"),
        "opinion_due": _("Opinion due"),
    }

"""The dashboard's figures read from the statistics counters (``app.statistics.counters``).

A period is split into whole months, read from month rows, and edge days,
read from day rows (``split_period``). The counters cover every mail for a
user with ``read_all``. For other users they cover the mail that is not
confidential in the departments of their scope, which the visibility rule
lets them see whole. ``app.statistics.operations`` adds the confidential
mail of their scope from the mail rows, with the visibility rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.extensions import db
from app.organisation.context import UserContext
from app.statistics.counters import ALL_DEPARTMENTS, ANY, NOT_SENT
from app.statistics.filters import AGE_BANDS, ELECTRONIC_CHANNELS, StatisticsFilter, as_date, department_tree_ids
from app.statistics.models import DAY, MONTH, StatisticsCount

Count = StatisticsCount


def _month_end(first: date) -> date:
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def split_period(start: date, end: date, cuts: Iterable[date] = (), months: bool = True) -> tuple[list[date], list[tuple[date, date]]]:
    """Split ``start``..``end`` into whole months and ranges of days, both included.

    A month is whole when it lies inside the period and no day of ``cuts``
    falls on its second day or later, so that every day of a whole month is
    on the same side of each cut. With ``months`` False every day is read
    from day rows.
    """
    whole: list[date] = []
    ranges: list[tuple[date, date]] = []
    first = start.replace(day=1)
    cut_days = sorted(cuts)
    while first <= end:
        last = _month_end(first)
        inside = start <= first and last <= end
        if months and inside and not any(first < cut <= last for cut in cut_days):
            whole.append(first)
        else:
            low, high = max(first, start), min(last, end)
            if ranges and ranges[-1][1] + timedelta(days=1) == low:
                ranges[-1] = (ranges[-1][0], high)
            else:
                ranges.append((low, high))
        first = last + timedelta(days=1)
    return whole, ranges


def period_clause(start: date, end: date, cuts: Iterable[date] = (), months: bool = True) -> ColumnElement[bool]:
    whole, ranges = split_period(start, end, cuts, months)
    parts: list[ColumnElement[bool]] = []
    if whole:
        parts.append(and_(Count.granularity == MONTH, Count.day.in_(whole)))
    for low, high in ranges:
        parts.append(and_(Count.granularity == DAY, Count.day >= low, Count.day <= high))
    return or_(*parts) if parts else false()


@dataclass(frozen=True)
class CounterScope:
    """The dimensions of the counters a dashboard reads: the user's scope and the chosen filters.

    ``typed`` is set when the filter has a mail type or category, ``channel``
    when it has a channel, ``whole`` when it selects every mail (read_all,
    no filter on department, type, category or channel).
    """

    conditions: tuple[ColumnElement[bool], ...]
    typed: bool
    channel: bool
    whole: bool


# Levels of counter rows, see app.statistics.counters.contributions.
DETAILED, BY_CHANNEL, BY_DEPARTMENT, WHOLE = "detailed", "by_channel", "by_department", "whole"


def level_clause(level: str) -> ColumnElement[bool]:
    """Select the counter rows of one level, so that no mail is counted twice."""
    if level == DETAILED:
        return Count.mail_type != ANY
    if level == BY_CHANNEL:
        return and_(Count.mail_type == ANY, Count.channel != ANY)
    if level == BY_DEPARTMENT:
        return and_(Count.channel == ANY, Count.department_id != ALL_DEPARTMENTS)
    return Count.department_id == ALL_DEPARTMENTS


def channel_level(scope: CounterScope) -> str:
    """Level for measures counted per channel (received mail, attachments)."""
    return DETAILED if scope.typed else BY_CHANNEL


def department_level(scope: CounterScope, whole: bool = False) -> str:
    """Level for measures whose rollups keep the department only (and, with ``whole``, nothing)."""
    if scope.typed or scope.channel:
        return DETAILED
    return WHOLE if whole and scope.whole else BY_DEPARTMENT


def counter_scope(user: UserContext, filters: StatisticsFilter) -> CounterScope:
    """Return the conditions on the counters that match ``base_conditions`` without the confidential mail of others."""
    conditions: list[ColumnElement[bool]] = []
    if not user.can("read_all"):
        scope = sorted(user.scope_department_ids)
        conditions.append(Count.department_id.in_(scope) if scope else false())
        conditions.append(Count.confidential.is_(false()))
    if filters.department_id is not None:
        if filters.department_exact:
            conditions.append(Count.department_id == filters.department_id)
        else:
            conditions.append(Count.department_id.in_(department_tree_ids(filters.department_id)))
    if filters.mail_type:
        conditions.append(Count.mail_type == filters.mail_type)
    if filters.category:
        conditions.append(Count.category == filters.category)
    if filters.channel:
        conditions.append(Count.channel == filters.channel)
    typed = bool(filters.mail_type or filters.category)
    whole = user.can("read_all") and filters.department_id is None and not typed and not filters.channel
    return CounterScope(tuple(conditions), typed, bool(filters.channel), whole)


def _rows(scope: CounterScope, measure: str, level: str, period: ColumnElement[bool] | None, columns: list[Any],
          extra: Iterable[ColumnElement[bool]] = ()) -> list[Any]:
    conditions = [Count.measure == measure, level_clause(level), *scope.conditions, *extra]
    if period is not None:
        conditions.append(period)
    statement = select(*columns, func.sum(Count.count)).where(*conditions)
    if not columns:
        return list(db.session.execute(statement))
    # Counter rows brought back to zero by later changes stay in the table; their groups are left out.
    return [row for row in db.session.execute(statement.group_by(*columns)) if row[-1]]


def received_groups(scope: CounterScope, filters: StatisticsFilter, monthly: bool) -> list[tuple[date, int, str, int, int]]:
    """Return (day or month start, department, channel, mails, mails without assignee) of the mail received."""
    period = period_clause(filters.start, filters.end, months=monthly)
    rows = _rows(scope, "received", channel_level(scope), period, [Count.day, Count.department_id, Count.channel, Count.flag])
    groups: dict[tuple[date, int, str], list[int]] = {}
    for day, department_id, channel, unassigned, count in rows:
        totals = groups.setdefault((as_date(day), department_id, channel), [0, 0])
        totals[0] += count
        if unassigned:
            totals[1] += count
    return [(*key, total, unassigned) for key, (total, unassigned) in groups.items()]


def processed_groups(scope: CounterScope, filters: StatisticsFilter, monthly: bool) -> list[tuple[date, int, int, int]]:
    """Return (closing day or month start, working days, due-date flag, mails) of the mail closed in the period."""
    period = period_clause(filters.start, filters.end, months=monthly)
    rows = _rows(scope, "processed", department_level(scope, whole=True), period, [Count.day, Count.value, Count.flag])
    return [(as_date(day), value, flag, count) for day, value, flag, count in rows]


def distribution_histogram(scope: CounterScope, filters: StatisticsFilter) -> Counter[int]:
    period = period_clause(filters.start, filters.end)
    rows = _rows(scope, "distribution", department_level(scope, whole=True), period, [Count.value])
    return Counter({value: count for value, count in rows})


def acknowledgement_counts(scope: CounterScope, filters: StatisticsFilter, types: list[str], days: int,
                           today: date) -> Counter[str]:
    """Count in_time, late, missing and pending acknowledgements of mail received in the period.

    A mail not sent is missing once ``arrival + days`` is before today, so the
    first day still pending cuts the months: it never splits a whole month.
    """
    first_pending = today - timedelta(days=days)
    period = period_clause(filters.start, filters.end, cuts=[first_pending])
    rows = _rows(scope, "acknowledgement", DETAILED, period, [Count.day, Count.flag], [Count.mail_type.in_(types)])
    result: Counter[str] = Counter()
    for day, flag, count in rows:
        if flag == NOT_SENT:
            result["missing" if as_date(day) < first_pending else "pending"] += count
        else:
            result["in_time" if flag == 1 else "late"] += count
    return result


def attachment_count(scope: CounterScope, filters: StatisticsFilter) -> int:
    period = period_clause(filters.start, filters.end)
    rows = _rows(scope, "attachments", channel_level(scope), period, [], [Count.channel.in_(ELECTRONIC_CHANNELS)])
    return int(rows[0][0] or 0) if rows else 0


def backlog_groups(scope: CounterScope, filters: StatisticsFilter, today: date) -> list[tuple[str, int, int | None, bool, int]]:
    """Return (age band, department, assignee or None, late, mails) of the open mail today."""
    band_cases = []
    for band in AGE_BANDS:
        if band.high is None:
            continue
        band_cases.append((Count.day >= today - timedelta(days=band.high), literal(band.id)))
    band_column = case(*band_cases, else_=literal(AGE_BANDS[-1].id))
    late = and_(Count.value > 0, Count.value < today.toordinal())
    extra: list[ColumnElement[bool]] = []
    if filters.age_band:
        chosen = next(item for item in AGE_BANDS if item.id == filters.age_band)
        extra.append(Count.day <= today - timedelta(days=chosen.low))
        if chosen.high is not None:
            extra.append(Count.day >= today - timedelta(days=chosen.high))
    late_column = case((late, 1), else_=0)
    rows = _rows(scope, "backlog", department_level(scope), None, [band_column, Count.department_id, Count.assignee_id, late_column], extra)
    return [(band_id, department_id, assignee_id or None, bool(is_late), count)
            for band_id, department_id, assignee_id, is_late, count in rows]


def backlog_count(scope: CounterScope, extra: Iterable[ColumnElement[bool]]) -> int:
    rows = _rows(scope, "backlog", DETAILED, None, [], extra)
    return int(rows[0][0] or 0) if rows else 0

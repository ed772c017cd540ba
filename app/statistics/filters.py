"""The filters of the statistics dashboard, the user's scope and the SQL they turn into.

Every figure and every drill-down list starts from ``base_conditions``: the
visibility rule of ``app.mail.visibility`` and, for users without
``read_all``, the handling departments of the user's scope (their
departments and the departments below them). A department typed in the URL
outside that scope is refused with PermissionDenied, never widened.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, case, cast, false, func, select
from sqlalchemy.sql.elements import ColumnElement

from app.core.errors import PermissionDenied, ValidationFailed
from app.core.parsing import ParseError, parse_date, parse_row_id
from app.extensions import db
from app.mail.models import CATEGORIES, CHANNELS, Mail
from app.mail.operations import PARIS
from app.mail.visibility import visible_mail_clause
from app.organisation.context import UserContext
from app.organisation.models import Department

# Channels whose mail reaches the prefecture without paper.
ELECTRONIC_CHANNELS = ("email", "web")
PAPER_CHANNELS = ("post", "hand")
# Maximum length of the period of one dashboard, in days: two years.
MAX_PERIOD_DAYS = 2 * 366


@dataclass(frozen=True)
class StatisticsFilter:
    """The manager's choice of period, department, mail type, category and channel.

    ``department_exact`` leaves out the sub-departments (bars per department);
    ``assignee`` is a user id or ``"none"`` (late mail per agent); ``age_band``
    picks one band of the backlog pyramid. The last three are set by the
    links of the charts and tables, and apply to the drill-down lists.
    """

    start: date
    end: date
    department_id: int | None = None
    department_exact: bool = False
    mail_type: str | None = None
    category: str | None = None
    channel: str | None = None
    assignee: str | None = None
    age_band: str | None = None

    def with_period(self, start: date, end: date) -> StatisticsFilter:
        return replace(self, start=max(start, self.start), end=min(end, self.end))

    def query_arguments(self, **changes: Any) -> dict[str, str]:
        """Return the URL arguments that rebuild this filter, with ``changes`` applied."""
        values = replace(self, **changes) if changes else self
        arguments = {"start": values.start.isoformat(), "end": values.end.isoformat()}
        optional = {
            "department": values.department_id, "mail_type": values.mail_type, "category": values.category,
            "channel": values.channel, "assignee": values.assignee, "age_band": values.age_band,
        }
        arguments.update({key: str(value) for key, value in optional.items() if value not in (None, "")})
        if values.department_exact:
            arguments["exact"] = "1"
        return arguments


def may_open_statistics(user: UserContext) -> bool:
    return user.can("statistics") or user.can("read_all")


def default_period(today: date) -> tuple[date, date]:
    """Return the twelve months ending today: from the day after the same date last year."""
    try:
        start = today.replace(year=today.year - 1) + timedelta(days=1)
    except ValueError:  # 29 February
        start = date(today.year - 1, 3, 1)
    return start, today


def _parse_optional_date(arguments: dict[str, str], name: str, errors: dict[str, str]) -> date | None:
    typed = (arguments.get(name) or "").strip()
    if not typed:
        return None
    try:
        return parse_date(typed)
    except ParseError:
        errors[name] = str(_l("Invalid date: use the format dd/mm/yyyy, e.g. 31/12/2026."))
        return None


def parse_filter(arguments: dict[str, str], user: UserContext, mail_types: set[str], today: date) -> StatisticsFilter:
    """Build the filter from URL arguments; raise ValidationFailed on bad input, PermissionDenied outside the user's scope."""
    errors: dict[str, str] = {}
    default_start, default_end = default_period(today)
    start = _parse_optional_date(arguments, "start", errors) or default_start
    end = _parse_optional_date(arguments, "end", errors) or default_end
    if start > end:
        errors["end"] = str(_l("The end date is before the start date."))
    elif (end - start).days > MAX_PERIOD_DAYS:
        errors["end"] = str(_l("The period is too long: choose at most two years."))

    department_id = _parse_department(arguments.get("department"), user, errors)
    mail_type = arguments.get("mail_type") or None
    if mail_type and mail_type not in mail_types:
        errors["mail_type"] = str(_l("Unknown mail type."))
    category = arguments.get("category") or None
    if category and category not in CATEGORIES:
        errors["category"] = str(_l("Unknown category."))
    channel = arguments.get("channel") or None
    if channel and channel not in CHANNELS:
        errors["channel"] = str(_l("Unknown channel."))
    assignee = arguments.get("assignee") or None
    if assignee and assignee != "none" and parse_row_id(assignee) is None:
        errors["assignee"] = str(_l("Unknown agent."))
    age_band = arguments.get("age_band") or None
    if age_band and age_band not in {band.id for band in AGE_BANDS}:
        errors["age_band"] = str(_l("Unknown age band."))
    if errors:
        raise ValidationFailed({key: [message] for key, message in errors.items()},
                               _l("Some filters are invalid: correct them and try again."))
    return StatisticsFilter(
        start=start, end=end, department_id=department_id,
        department_exact=arguments.get("exact") == "1" and department_id is not None,
        mail_type=mail_type, category=category, channel=channel, assignee=assignee, age_band=age_band,
    )


def _parse_department(typed: str | None, user: UserContext, errors: dict[str, str]) -> int | None:
    if not typed:
        return None
    department_id = parse_row_id(typed)
    if department_id is None or db.session.get(Department, department_id) is None:
        errors["department"] = str(_l("Unknown department."))
        return None
    if not user.can("read_all") and department_id not in user.scope_department_ids:
        raise PermissionDenied(_l("You may only see the statistics of your own departments."))
    return department_id


# --- Backlog age bands ----------------------------------------------------------------


@dataclass(frozen=True)
class AgeBand:
    """Open mail whose arrival was ``low`` to ``high`` calendar days ago, both included; ``high`` None is open-ended."""

    id: str
    low: int
    high: int | None


AGE_BANDS = (
    AgeBand("0-7", 0, 7),
    AgeBand("8-15", 8, 15),
    AgeBand("16-30", 16, 30),
    AgeBand("31-60", 31, 60),
    AgeBand("61-90", 61, 90),
    AgeBand("91-180", 91, 180),
    AgeBand("181+", 181, None),
)


def age_band_of(age_days: int) -> AgeBand:
    return next(band for band in AGE_BANDS if band.high is None or age_days <= band.high)


def age_band_clause(band_id: str, today: date) -> ColumnElement[bool]:
    band = next(item for item in AGE_BANDS if item.id == band_id)
    condition = Mail.arrival_date <= today - timedelta(days=band.low)
    if band.high is not None:
        condition = condition & (Mail.arrival_date >= today - timedelta(days=band.high))
    return condition


# --- SQL building blocks ----------------------------------------------------------------


def department_tree_ids(department_id: int) -> list[int]:
    path = db.session.execute(select(Department.path).where(Department.id == department_id)).scalar_one()
    return list(db.session.execute(select(Department.id).where(Department.path.startswith(path))).scalars())


def base_conditions(user: UserContext, filters: StatisticsFilter) -> list[ColumnElement[bool]]:
    """Return the conditions every figure and list shares: visibility, scope and the chosen dimensions."""
    conditions: list[ColumnElement[bool]] = [visible_mail_clause(user)]
    if not user.can("read_all"):
        scope = sorted(user.scope_department_ids)
        conditions.append(Mail.handling_department_id.in_(scope) if scope else false())
    if filters.department_id is not None:
        if filters.department_exact:
            conditions.append(Mail.handling_department_id == filters.department_id)
        else:
            conditions.append(Mail.handling_department_id.in_(department_tree_ids(filters.department_id)))
    if filters.mail_type:
        conditions.append(Mail.mail_type == filters.mail_type)
    if filters.category:
        conditions.append(Mail.category == filters.category)
    if filters.channel:
        conditions.append(Mail.channel == filters.channel)
    if filters.assignee == "none":
        conditions.append(Mail.assignee_id.is_(None))
    elif filters.assignee:
        conditions.append(Mail.assignee_id == int(filters.assignee))
    return conditions


def day_start_utc(day: date) -> datetime:
    """Return midnight at the start of ``day`` in Europe/Paris, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


def paris_date(column: Any, first_year: int, last_year: int) -> ColumnElement[date]:
    """Return the Europe/Paris calendar date of a UTC timestamp column, in SQL.

    PostgreSQL converts with its time zone database. SQLite has none and
    stores naive UTC text, so the offset is chosen by the European summer
    time rule, in force since 1996: summer time runs from 01:00 UTC on the
    last Sunday of March to 01:00 UTC on the last Sunday of October. The rule
    is applied to the years ``first_year`` to ``last_year``, which the caller
    chooses to cover the timestamps it selects.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("Europe/Paris", column), Date)
    windows = [_summer_time_window(year) for year in range(first_year, last_year + 1)]
    summer = [(column >= begin) & (column < finish) for begin, finish in windows]
    if not summer:
        return func.date(column, "+1 hours")
    from sqlalchemy import or_

    return case((or_(*summer), func.date(column, "+2 hours")), else_=func.date(column, "+1 hours"))


def _last_sunday(year: int, month: int) -> date:
    day = date(year, month + 1, 1) - timedelta(days=1)
    return day - timedelta(days=(day.weekday() - 6) % 7)


def _summer_time_window(year: int) -> tuple[datetime, datetime]:
    begin = datetime.combine(_last_sunday(year, 3), time(1), tzinfo=UTC)
    finish = datetime.combine(_last_sunday(year, 10), time(1), tzinfo=UTC)
    return begin, finish


def as_date(value: Any) -> date:
    """Return a date from what the database returned for a date expression (SQLite gives text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

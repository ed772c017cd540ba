"""The indicators of the statistics dashboard, computed from the mail records and their history.

Each figure has a drill-down list. ``indicator_condition`` returns the SQL
condition of the mail behind one figure, and the dashboard counts the same
conditions grouped. The count on a list therefore equals the figure it comes
from, which tests/integration/test_statistics.py checks.

``build_dashboard`` reads most figures from the exact counters of
``app.statistics.counters`` (see ``app.statistics.aggregates``). It reads
the rest from the mail rows: the confidential mail of a user without
read_all, the overdue opinion requests and the mail with missing-documents
requests. It reads everything from the rows while the counters are invalid
or when the filter names an agent. The tests compare both paths figure by figure.

Durations are counted in working days of the handling department's
calendar (``app.deadlines.calendar``): the day of arrival does not count, so
mail closed on its arrival day took 0 days. Percentiles are nearest-rank: the
p-th percentile of n values is the ceil(p * n)-th smallest, so the median of an
even count is the lower middle value, and every percentile is a value some mail had.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.configuration.loader import Configuration
from app.deadlines.calendar import get_calendar
from app.deadlines.legal import add_months
from app.deadlines.models import MissingDocumentsRecord
from app.distribution.models import OPINION, DistributionEntry
from app.documents.models import Document
from app.extensions import db
from app.mail.models import HistoryEntry, Mail, MailCorrespondent
from app.organisation.context import UserContext
from app.organisation.models import Department
from app.statistics import aggregates
from app.statistics.counters import assigning_events, first_assignment_at, usable_counters
from app.statistics.filters import (
    AGE_BANDS,
    ELECTRONIC_CHANNELS,
    PAPER_CHANNELS,
    AgeBand,
    StatisticsFilter,
    age_band_clause,
    age_band_of,
    as_date,
    base_conditions,
    day_start_utc,
    paris_date,
)

# An acknowledgement of receipt is due at the latest this many calendar days
# after the day of receipt. Article R112-11-2 of the Code des relations entre
# le public et l'administration (Legifrance LEGIARTI000031430621) sets seven
# days for the acknowledgement of a request sent electronically when it is not
# instantaneous. The code sets no delay for the acknowledgement of a paper
# request (article L112-3), and the dashboard applies the same seven days to paper.
ACKNOWLEDGEMENT_DAYS = 7

# Maximum number of confidential mails a dashboard reads by id; beyond it the queries test the confidential flag.
MAX_LISTED_IDS = 10_000

INDICATORS = (
    "received", "processed", "processed_within_due", "processed_late", "backlog", "late",
    "acknowledged_in_time", "acknowledged_late", "acknowledgement_missing", "implicit_decisions",
    "opinions_overdue", "unassigned", "electronic", "paper",
)


@dataclass(frozen=True)
class DurationSummary:
    """A distribution of durations in working days, kept whole as a histogram so that percentiles are exact."""

    histogram: dict[int, int]

    @property
    def count(self) -> int:
        return sum(self.histogram.values())

    def percentile(self, fraction: float) -> int | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * fraction))
        seen = 0
        for days in sorted(self.histogram):
            seen += self.histogram[days]
            if seen >= rank:
                return days
        raise AssertionError("rank beyond the histogram")

    @property
    def median(self) -> int | None:
        return self.percentile(0.5)

    @property
    def p90(self) -> int | None:
        return self.percentile(0.9)


def nearest_rank(values: Iterable[int], fraction: float) -> int | None:
    """Return the nearest-rank percentile of ``values``, the same definition as DurationSummary."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


@dataclass(frozen=True)
class Bucket:
    """One bar or point of a chart: a label, a count and the filter of its drill-down list."""

    label: str
    value: int
    indicator: str
    arguments: dict[str, str]


@dataclass
class TrendPoint:
    start: date
    end: date
    received: int = 0
    processed: int = 0


@dataclass
class DepartmentRow:
    department_id: int
    code: str
    label: str
    received: int = 0
    backlog: int = 0
    late: int = 0


@dataclass
class AgentRow:
    user_id: int | None
    name: str
    late: int = 0


@dataclass
class Acknowledgements:
    """Mail that needs an acknowledgement of receipt (AR), by the fate of its first AR."""

    in_time: int = 0
    late: int = 0
    missing: int = 0
    # Not sent yet while the legal time still runs.
    pending: int = 0

    @property
    def due(self) -> int:
        return self.in_time + self.late + self.missing


@dataclass
class Dematerialisation:
    by_channel: dict[str, int]
    electronic: int
    paper: int
    other: int
    attachments: int
    factors: dict[str, float]

    @property
    def pages(self) -> float:
        return self.attachments * self.factors.get("pages_per_attachment", 1.0)

    @property
    def sheets(self) -> float:
        return self.pages * self.factors.get("sheets_per_page", 1.0)

    @property
    def paper_grams(self) -> float:
        return self.sheets * self.factors.get("paper_grams_per_sheet", 0.0)

    @property
    def toner_grams(self) -> float:
        return self.pages * self.factors.get("toner_grams_per_page", 0.0)


@dataclass
class Dashboard:
    filters: StatisticsFilter
    today: date
    received: int
    processed: int
    processing: DurationSummary
    processed_with_due: int
    processed_within_due: int
    backlog: int
    pyramid: list[tuple[AgeBand, int]]
    late: int
    departments: list[DepartmentRow]
    agents: list[AgentRow]
    trend_unit: str
    trend: list[TrendPoint]
    acknowledgements: Acknowledgements
    implicit_decisions: int
    opinions_overdue_requests: int
    opinions_overdue_mails: int
    distribution: DurationSummary
    unassigned: int
    dematerialisation: Dematerialisation
    extras: dict[str, Any] = field(default_factory=dict)


# --- Conditions of the figures --------------------------------------------------------


def received_conditions(filters: StatisticsFilter) -> list[ColumnElement[bool]]:
    return [Mail.arrival_date >= filters.start, Mail.arrival_date <= filters.end]


def processed_conditions(filters: StatisticsFilter) -> list[ColumnElement[bool]]:
    """Mail closed during the period, in Europe/Paris days; reopened mail has no closing time and is not counted."""
    return [Mail.closed_at >= day_start_utc(filters.start), Mail.closed_at < day_start_utc(filters.end + timedelta(days=1))]


def _closed_on(filters: StatisticsFilter) -> ColumnElement[date]:
    # processed_conditions keeps closing times between the start and the end of the period in Paris time,
    # so only the summer times of those years matter.
    return paris_date(Mail.closed_at, filters.start.year, filters.end.year)


def open_conditions(configuration: Configuration) -> list[ColumnElement[bool]]:
    """Mail in a declared status that is not a closed one, as the baskets list their statuses."""
    return [Mail.status.in_(sorted(set(configuration.statuses) - configuration.closed_statuses))]


def late_conditions(configuration: Configuration, today: date) -> list[ColumnElement[bool]]:
    """Open mail past its due date: the same test as the "late" basket (due date before today)."""
    return [*open_conditions(configuration), Mail.due_date < today]


def opinions_overdue_clause(today: date) -> ColumnElement[bool]:
    return and_(
        DistributionEntry.role == OPINION, DistributionEntry.answered_at.is_(None), DistributionEntry.due_date < today,
    )


def indicator_condition(
    indicator: str, user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date
) -> ColumnElement[bool]:
    """Return the SQL condition selecting the mail behind ``indicator`` for ``user`` and ``filters``."""
    conditions = base_conditions(user, filters)
    if indicator == "received":
        conditions += received_conditions(filters)
    elif indicator == "electronic":
        conditions += [*received_conditions(filters), Mail.channel.in_(ELECTRONIC_CHANNELS)]
    elif indicator == "paper":
        conditions += [*received_conditions(filters), Mail.channel.in_(PAPER_CHANNELS)]
    elif indicator == "unassigned":
        conditions += [*received_conditions(filters), Mail.assignee_id.is_(None)]
    elif indicator == "processed":
        conditions += processed_conditions(filters)
    elif indicator == "processed_within_due":
        conditions += [*processed_conditions(filters), Mail.due_date.is_not(None), _closed_on(filters) <= Mail.due_date]
    elif indicator == "processed_late":
        conditions += [*processed_conditions(filters), Mail.due_date.is_not(None), _closed_on(filters) > Mail.due_date]
    elif indicator == "backlog":
        conditions += open_conditions(configuration)
    elif indicator == "late":
        conditions += late_conditions(configuration, today)
    elif indicator == "opinions_overdue":
        conditions.append(Mail.id.in_(select(DistributionEntry.mail_id).where(opinions_overdue_clause(today))))
    elif indicator == "implicit_decisions":
        conditions.append(implicit_decision_clause(user, filters, configuration, today))
    elif indicator in ("acknowledged_in_time", "acknowledged_late", "acknowledgement_missing"):
        fate = {"acknowledged_in_time": "in_time", "acknowledged_late": "late", "acknowledgement_missing": "missing"}
        ids = acknowledgement_mail_ids(user, filters, configuration, today)[fate[indicator]]
        conditions.append(Mail.id.in_(sorted(ids)))
    else:
        raise ValueError(f"unknown indicator {indicator!r}")
    if filters.age_band and indicator in ("backlog", "late"):
        conditions.append(age_band_clause(filters.age_band, today))
    return and_(*conditions)


def count_indicator(
    indicator: str, user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
    extra: Iterable[ColumnElement[bool]] = (),
) -> int:
    condition = indicator_condition(indicator, user, filters, configuration, today)
    return int(db.session.execute(select(func.count()).select_from(Mail).where(condition, *extra)).scalar_one())


# --- Implicit decisions ------------------------------------------------------------------


def latest_arrival_with_decision_before(today: date, months: int, days: int | None) -> date:
    """Return the last arrival date whose implicit decision falls before ``today`` (no missing documents)."""
    if days is not None:
        return today - timedelta(days=days + 1)
    arrival = today - timedelta(days=1)
    # add_months never decreases when the start moves later, so the first date found going back is the latest.
    while add_months(arrival, months) >= today:
        arrival -= timedelta(days=1)
    return arrival


def implicit_regimes(configuration: Configuration) -> dict[str, Any]:
    return {key: spec for key, spec in configuration.mail_types.items() if spec.acknowledgement != "none"}


def implicit_by_type(regimes: dict[str, Any], today: date, type_column: Any, arrival_column: Any) -> list[ColumnElement[bool]]:
    """Return, per mail type, the arrival dates whose implicit decision (without missing documents) is before today."""
    return [
        and_(type_column == key, arrival_column <= latest_arrival_with_decision_before(
            today, spec.implicit_decision_delay.months or 0, spec.implicit_decision_delay.days))
        for key, spec in regimes.items()
    ]


def _implicit_with_requests(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
                            regimes: dict[str, Any]) -> list[Mail]:
    """Return the open mail with missing-documents requests whose implicit decision date is before today."""
    from app.deadlines.operations import implicit_decision_for

    open_with_requests = db.session.execute(
        select(Mail).where(
            *base_conditions(user, filters), *open_conditions(configuration),
            Mail.mail_type.in_(sorted(regimes)), Mail.id.in_(select(MissingDocumentsRecord.mail_id)),
        )
    ).scalars()
    return [
        mail for mail in open_with_requests
        if (decision := implicit_decision_for(mail, regimes[mail.mail_type]).date) is not None and decision < today
    ]


def implicit_decision_clause(
    user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date
) -> ColumnElement[bool]:
    """Open mail whose implicit decision date (CRPA, computed as on the mail's page) is before today.

    Mail without missing-documents requests has a decision date fixed by its
    arrival date and type, so the test is a range of arrival dates per type.
    Mail with such requests is computed one by one with
    ``app.deadlines.operations.implicit_decision_for``.
    """
    regimes = implicit_regimes(configuration)
    if not regimes:
        return Mail.id.is_(None)
    plain = and_(or_(*implicit_by_type(regimes, today, Mail.mail_type, Mail.arrival_date)),
                 Mail.id.not_in(select(MissingDocumentsRecord.mail_id)))
    computed = [mail.id for mail in _implicit_with_requests(user, filters, configuration, today, regimes)]
    return and_(*open_conditions(configuration), or_(plain, Mail.id.in_(computed)))


# --- Acknowledgements of receipt ------------------------------------------------------


def _acknowledgement_statement(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
                               per_mail: bool, extra: Iterable[ColumnElement[bool]] = ()) -> Any:
    """Select mail received in the period that needs an AR, with the day its first AR was sent.

    The rules are those of ``app.documents.acknowledgements``: the mail type
    has a regime of silence, the mail has a sender (mail without one never
    needs an AR), and an AR counts once its document is in the "sent" state.
    """
    from app.documents.acknowledgements import types_needing_acknowledgement

    types = types_needing_acknowledgement(configuration)
    has_sender = select(MailCorrespondent.id).where(
        MailCorrespondent.mail_id == Mail.id, MailCorrespondent.role == "sender"
    ).exists()
    first_sent = (
        select(Document.mail_id, func.min(Document.sent_at).label("sent_at"))
        .where(Document.kind == "acknowledgement", Document.state == "sent", Document.sent_at.is_not(None))
        .group_by(Document.mail_id)
        .subquery()
    )
    sent_on = paris_date(first_sent.c.sent_at, filters.start.year, today.year).label("sent_on")
    columns = [Mail.arrival_date, sent_on]
    statement = (
        select(*([Mail.id] if per_mail else []), *columns, *([] if per_mail else [func.count()]))
        .select_from(Mail)
        .outerjoin(first_sent, first_sent.c.mail_id == Mail.id)
        .where(*base_conditions(user, filters), *received_conditions(filters), Mail.mail_type.in_(types), has_sender,
               *extra)
    )
    return statement if per_mail else statement.group_by(*columns)


def acknowledgement_fate(arrival: date, sent_on: date | None, today: date) -> str:
    """Return in_time, late, missing or pending for one mail's first acknowledgement of receipt."""
    limit = arrival + timedelta(days=ACKNOWLEDGEMENT_DAYS)
    if sent_on is not None:
        return "in_time" if sent_on <= limit else "late"
    return "missing" if limit < today else "pending"


def acknowledgements(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
                     extra: Iterable[ColumnElement[bool]] = ()) -> Acknowledgements:
    result = Acknowledgements()
    rows = db.session.execute(_acknowledgement_statement(user, filters, configuration, today, per_mail=False, extra=extra))
    for arrival, sent_on, count in rows:
        fate = acknowledgement_fate(as_date(arrival), as_date(sent_on) if sent_on else None, today)
        setattr(result, fate, getattr(result, fate) + count)
    return result


def acknowledgement_mail_ids(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date) -> dict[str, set[int]]:
    ids: dict[str, set[int]] = defaultdict(set)
    rows = db.session.execute(_acknowledgement_statement(user, filters, configuration, today, per_mail=True))
    for mail_id, arrival, sent_on in rows:
        ids[acknowledgement_fate(as_date(arrival), as_date(sent_on) if sent_on else None, today)].add(mail_id)
    return ids


# --- Distribution: arrival to first assignment ------------------------------------------


def distribution_summary(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
                         extra: Iterable[ColumnElement[bool]] = ()) -> DurationSummary:
    """Working days from arrival to first assignment, for mail received in the period and assigned since."""
    events = assigning_events(configuration)
    conditions = [*base_conditions(user, filters), *received_conditions(filters), *extra]
    changed = select(HistoryEntry.mail_id).where(HistoryEntry.event.in_(events))
    created_on = paris_date(Mail.created_at, filters.start.year, today.year).label("created_on")
    histogram: Counter[int] = Counter()

    plain = db.session.execute(
        select(Mail.arrival_date, Department.calendar, created_on, func.count())
        .join(Department, Department.id == Mail.handling_department_id)
        .where(*conditions, Mail.assignee_id.is_not(None), Mail.id.not_in(changed))
        .group_by(Mail.arrival_date, Department.calendar, created_on)
    )
    for arrival, zone, day, count in plain:
        histogram[get_calendar(zone).count_working_days(as_date(arrival), as_date(day))] += count

    from app.mail.operations import PARIS

    changed_mails = db.session.execute(
        select(Mail.id, Mail.arrival_date, Department.calendar, Mail.created_at, Mail.assignee_id)
        .join(Department, Department.id == Mail.handling_department_id)
        .where(*conditions, Mail.id.in_(changed))
    ).all()
    entries: dict[int, list[tuple[Any, dict[str, Any]]]] = defaultdict(list)
    if changed_mails:
        for mail_id, at, details in db.session.execute(
            select(HistoryEntry.mail_id, HistoryEntry.at, HistoryEntry.details)
            .where(HistoryEntry.event.in_(events), HistoryEntry.mail_id.in_([row.id for row in changed_mails]))
            .order_by(HistoryEntry.at, HistoryEntry.id)
        ):
            entries[mail_id].append((at, details or {}))
    for mail_id, arrival, zone, created_at, assignee_id in changed_mails:
        first = first_assignment_at(created_at, assignee_id, entries[mail_id])
        if first is not None:
            histogram[get_calendar(zone).count_working_days(arrival, first.astimezone(PARIS).date())] += 1
    return DurationSummary(dict(histogram))


# --- The dashboard -------------------------------------------------------------------------


def trend_unit(filters: StatisticsFilter) -> str:
    """Weeks for periods up to about three months, months beyond."""
    return "week" if (filters.end - filters.start).days <= 92 else "month"


def bucket_start(day: date, unit: str) -> date:
    return day - timedelta(days=day.weekday()) if unit == "week" else day.replace(day=1)


def bucket_end(start: date, unit: str) -> date:
    if unit == "week":
        return start + timedelta(days=6)
    following = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return following - timedelta(days=1)


def trend_buckets(filters: StatisticsFilter, unit: str) -> list[TrendPoint]:
    points: list[TrendPoint] = []
    start = bucket_start(filters.start, unit)
    while start <= filters.end:
        end = bucket_end(start, unit)
        points.append(TrendPoint(max(start, filters.start), min(end, filters.end)))
        start = end + timedelta(days=1)
    return points


def _received_groups(user: UserContext, filters: StatisticsFilter, extra: Iterable[ColumnElement[bool]] = ()) -> list[Any]:
    return list(db.session.execute(
        select(Mail.arrival_date, Mail.handling_department_id, Mail.channel, func.count())
        .where(*base_conditions(user, filters), *received_conditions(filters), *extra)
        .group_by(Mail.arrival_date, Mail.handling_department_id, Mail.channel)
    ))


def _processed_groups(user: UserContext, filters: StatisticsFilter, extra: Iterable[ColumnElement[bool]] = ()) -> list[Any]:
    """Count closed mail per arrival day, closing day and calendar, with how many had a due date and met it."""
    closed_on = _closed_on(filters)
    with_due = func.sum(case((Mail.due_date.is_not(None), 1), else_=0))
    within_due = func.sum(case((and_(Mail.due_date.is_not(None), closed_on <= Mail.due_date), 1), else_=0))
    return list(db.session.execute(
        select(Mail.arrival_date, closed_on.label("closed_on"), Department.calendar, func.count(), with_due, within_due)
        .join(Department, Department.id == Mail.handling_department_id)
        .where(*base_conditions(user, filters), *processed_conditions(filters), *extra)
        .group_by(Mail.arrival_date, closed_on, Department.calendar)
    ))


def _open_groups(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
                 extra: Iterable[ColumnElement[bool]] = ()) -> list[Any]:
    late = (Mail.due_date < today).label("late")
    conditions = [*base_conditions(user, filters), *open_conditions(configuration), *extra]
    if filters.age_band:
        conditions.append(age_band_clause(filters.age_band, today))
    # Grouping by status first lets the database read ix_mail_statistics_open in order, one status after the other.
    return list(db.session.execute(
        select(Mail.status, Mail.arrival_date, Mail.handling_department_id, Mail.assignee_id, late, func.count())
        .where(*conditions)
        .group_by(Mail.status, Mail.arrival_date, Mail.handling_department_id, Mail.assignee_id, late)
    ))


def _departments(user: UserContext, ids: set[int], locale: str) -> dict[int, DepartmentRow]:
    if not ids:
        return {}
    rows = db.session.execute(select(Department).where(Department.id.in_(sorted(ids)))).scalars()
    return {row.id: DepartmentRow(row.id, row.code, row.label(locale)) for row in rows}


def _agent_names(ids: set[int]) -> dict[int, str]:
    from flask_appbuilder.security.sqla.models import User

    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.first_name, User.last_name).where(User.id.in_(sorted(ids))))
    return {row.id: f"{row.first_name} {row.last_name}".strip() for row in rows}


def live_attachment_count(user: UserContext, filters: StatisticsFilter, extra: Iterable[ColumnElement[bool]] = ()) -> int:
    from app.attachments.models import Attachment

    return int(db.session.execute(
        select(func.count(Attachment.id)).join(Mail, Mail.id == Attachment.mail_id)
        .where(*base_conditions(user, filters), *received_conditions(filters), Mail.channel.in_(ELECTRONIC_CHANNELS),
               *extra)
    ).scalar_one())


def dematerialisation(by_channel: dict[str, int], attachments: int, factors: dict[str, float]) -> Dematerialisation:
    electronic = sum(by_channel.get(channel, 0) for channel in ELECTRONIC_CHANNELS)
    paper = sum(by_channel.get(channel, 0) for channel in PAPER_CHANNELS)
    other = sum(by_channel.values()) - electronic - paper
    return Dematerialisation(dict(by_channel), electronic, paper, other, attachments, factors)


@dataclass(frozen=True)
class Sources:
    """Where the figures of one dashboard come from.

    ``scope`` is set when the counters are used: for every mail of the filter,
    or, for a user without read_all, for the mail of their scope that is not
    confidential. ``live`` is None when the counters cover everything, else
    the conditions added to ``base_conditions`` for the mail read from the
    rows (everything when it is empty).
    """

    scope: aggregates.CounterScope | None
    live: list[ColumnElement[bool]] | None
    covered: list[ColumnElement[bool]]


def choose_sources(user: UserContext, filters: StatisticsFilter, configuration: Configuration, counters: bool = True) -> Sources:
    """Use the counters when they match the rows and the filter has no agent; otherwise read the mail rows."""
    if not counters or filters.assignee is not None or not usable_counters(db.session.connection(), configuration):
        return Sources(None, [], [])
    scope = aggregates.counter_scope(user, filters)
    if user.can("read_all"):
        return Sources(scope, None, [])
    # Mail of the scope that is not confidential is visible whole; the confidential mail goes through the visibility rule.
    # Its ids are read first, so that the queries of the figures look up those mails and no range of the period.
    confidential = list(db.session.execute(
        select(Mail.id).where(*base_conditions(user, filters), Mail.confidential.is_(True)).limit(MAX_LISTED_IDS + 1)
    ).scalars())
    if not confidential:
        return Sources(scope, None, [Mail.confidential.is_(False)])
    live: list[ColumnElement[bool]] = (
        [Mail.id.in_(confidential)] if len(confidential) <= MAX_LISTED_IDS else [Mail.confidential.is_(True)]
    )
    return Sources(scope, live, [Mail.confidential.is_(False)])


def _implicit_decisions(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
                        sources: Sources) -> int:
    """Count implicit decisions: counters for the plain mail they cover, the mail rows for the rest."""
    if sources.scope is None:
        return count_indicator("implicit_decisions", user, filters, configuration, today)
    regimes = implicit_regimes(configuration)
    if not regimes:
        return 0
    plain = aggregates.backlog_count(
        sources.scope, [or_(*implicit_by_type(regimes, today, aggregates.Count.mail_type, aggregates.Count.day))]
    )
    # The counters hold mail with missing-documents requests at their plain date: take it out, add the computed ones.
    has_requests = select(MissingDocumentsRecord.mail_id)
    plain_with_requests = int(db.session.execute(
        select(func.count()).select_from(Mail).where(
            *base_conditions(user, filters), *open_conditions(configuration), *sources.covered,
            or_(*implicit_by_type(regimes, today, Mail.mail_type, Mail.arrival_date)), Mail.id.in_(has_requests),
        )
    ).scalar_one())
    computed = _implicit_with_requests(user, filters, configuration, today, regimes)
    covered_computed = sum(1 for mail in computed if not sources.covered or not mail.confidential)
    total = plain - plain_with_requests + covered_computed
    if sources.live is not None:
        total += count_indicator("implicit_decisions", user, filters, configuration, today, sources.live)
    return total


def build_dashboard(user: UserContext, filters: StatisticsFilter, configuration: Configuration, today: date,
                    locale: str = "fr", factors: dict[str, float] | None = None, counters: bool = True) -> Dashboard:
    """Compute every figure of the dashboard for ``user`` and ``filters``, from the counters where they apply.

    ``counters`` False reads every figure from the mail rows.
    """
    from app.documents.acknowledgements import types_needing_acknowledgement

    sources = choose_sources(user, filters, configuration, counters)
    scope, live = sources.scope, sources.live
    unit = trend_unit(filters)
    trend = trend_buckets(filters, unit)
    trend_index = {point.start: point for point in trend}

    def point_of(day: date) -> TrendPoint:
        return trend_index.get(max(bucket_start(day, unit), filters.start)) or trend_index[filters.start]

    received = unassigned = 0
    by_channel: Counter[str] = Counter()
    departments_received: Counter[int] = Counter()
    received_rows: list[tuple[date, int, str, int]] = []
    if scope is not None:
        for day, department_id, channel, count, without_assignee in aggregates.received_groups(scope, filters, unit == "month"):
            received_rows.append((day, department_id, channel, count))
            unassigned += without_assignee
    if live is not None:
        received_rows += [(as_date(arrival), department_id, channel, count)
                          for arrival, department_id, channel, count in _received_groups(user, filters, live)]
        unassigned += count_indicator("unassigned", user, filters, configuration, today, live)
    for day, department_id, channel, count in received_rows:
        received += count
        by_channel[channel] += count
        departments_received[department_id] += count
        point_of(day).received += count

    # (closing day or month, working days, mails, with a due date, within it)
    processed_rows: list[tuple[date, int, int, int, int]] = []
    if scope is not None:
        processed_rows += [(day, days, count, count if flag else 0, count if flag == 1 else 0)
                           for day, days, flag, count in aggregates.processed_groups(scope, filters, unit == "month")]
    if live is not None:
        for arrival, closed_on, zone, count, with_due, within in _processed_groups(user, filters, live):
            closed_day = as_date(closed_on)
            days = get_calendar(zone).count_working_days(as_date(arrival), closed_day)
            processed_rows.append((closed_day, days, count, with_due, within))
    processed = processed_with_due = within_due = 0
    histogram: Counter[int] = Counter()
    for closed_day, days, count, with_due, within in processed_rows:
        processed += count
        histogram[days] += count
        point_of(closed_day).processed += count
        processed_with_due += with_due
        within_due += within

    # (age band, department, assignee, late, mails)
    open_rows: list[tuple[str, int, int | None, bool, int]] = []
    if scope is not None:
        open_rows += aggregates.backlog_groups(scope, filters, today)
    if live is not None:
        open_rows += [(age_band_of((today - as_date(arrival)).days).id, department_id, assignee_id, bool(is_late), count)
                      for _status, arrival, department_id, assignee_id, is_late, count
                      in _open_groups(user, filters, configuration, today, live)]
    backlog = late = 0
    pyramid: Counter[str] = Counter()
    departments_open: Counter[int] = Counter()
    departments_late: Counter[int] = Counter()
    agents_late: Counter[int | None] = Counter()
    for band_id, department_id, assignee_id, is_late, count in open_rows:
        backlog += count
        pyramid[band_id] += count
        departments_open[department_id] += count
        if is_late:
            late += count
            departments_late[department_id] += count
            agents_late[assignee_id] += count

    rows = _departments(user, set(departments_received) | set(departments_open), locale)
    for department_id, row in rows.items():
        row.received = departments_received[department_id]
        row.backlog = departments_open[department_id]
        row.late = departments_late[department_id]
    names = _agent_names({key for key in agents_late if key is not None})
    agents = [AgentRow(key, names.get(key, "") if key is not None else "", count) for key, count in agents_late.items()]
    agents.sort(key=lambda row: (-row.late, row.name))

    overdue_base = [*base_conditions(user, filters), opinions_overdue_clause(today)]
    opinion_requests = int(db.session.execute(
        select(func.count(DistributionEntry.id)).join(Mail, Mail.id == DistributionEntry.mail_id).where(*overdue_base)
    ).scalar_one())

    acknowledged = Acknowledgements()
    distribution: Counter[int] = Counter()
    attachments = 0
    if scope is not None:
        fates = aggregates.acknowledgement_counts(scope, filters, types_needing_acknowledgement(configuration),
                                                  ACKNOWLEDGEMENT_DAYS, today)
        acknowledged = Acknowledgements(fates["in_time"], fates["late"], fates["missing"], fates["pending"])
        distribution.update(aggregates.distribution_histogram(scope, filters))
        attachments += aggregates.attachment_count(scope, filters)
    if live is not None:
        rest = acknowledgements(user, filters, configuration, today, live)
        acknowledged = Acknowledgements(acknowledged.in_time + rest.in_time, acknowledged.late + rest.late,
                                        acknowledged.missing + rest.missing, acknowledged.pending + rest.pending)
        distribution.update(distribution_summary(user, filters, configuration, today, live).histogram)
        attachments += live_attachment_count(user, filters, live)

    return Dashboard(
        filters=filters, today=today, received=received, processed=processed,
        processing=DurationSummary(dict(histogram)), processed_with_due=processed_with_due,
        processed_within_due=within_due, backlog=backlog,
        pyramid=[(band, pyramid[band.id]) for band in AGE_BANDS], late=late,
        departments=sorted(rows.values(), key=lambda row: row.code), agents=agents,
        trend_unit=unit, trend=trend,
        acknowledgements=acknowledged,
        implicit_decisions=_implicit_decisions(user, filters, configuration, today, sources),
        opinions_overdue_requests=opinion_requests,
        opinions_overdue_mails=count_indicator("opinions_overdue", user, filters, configuration, today),
        distribution=DurationSummary({days: count for days, count in distribution.items() if count}),
        unassigned=unassigned,
        dematerialisation=dematerialisation(by_channel, attachments, factors or {}),
        extras={"counters": scope is not None},
    )


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None



"""Tables (also exported) and charts of the dashboard, built from a computed Dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _
from markupsafe import Markup

from app.core.parsing import format_date_fr
from app.statistics.charts import Bar, Series, grouped_columns, horizontal_bars
from app.statistics.exports import Table
from app.statistics.filters import ELECTRONIC_CHANNELS, PAPER_CHANNELS
from app.statistics.operations import Dashboard, share

# Builds the URL of a drill-down list from an indicator and filter changes.
UrlFor = Callable[..., str]

FACTOR_ORDER = ("pages_per_attachment", "sheets_per_page", "paper_grams_per_sheet", "toner_grams_per_page")


def channel_label(channel: str) -> str:
    labels = {"post": _("Post"), "email": _("E-mail"), "web": _("Web form"), "hand": _("By hand"), "internal": _("Internal")}
    return labels.get(channel, channel)


def trend_label(dashboard: Dashboard, index: int) -> str:
    point = dashboard.trend[index]
    if dashboard.trend_unit == "month":
        return point.start.strftime("%m/%Y")
    return format_date_fr(point.start)[:5]


def percent(part: int, whole: int) -> float | None:
    value = share(part, whole)
    return None if value is None else round(100 * value, 1)


def summary_rows(dashboard: Dashboard) -> list[tuple[str, str, Any]]:
    """Return (indicator id for the drill-down or "", label, value) for the table of key figures."""
    acknowledgements = dashboard.acknowledgements
    return [
        ("received", _("Mail registered"), dashboard.received),
        ("processed", _("Mail processed"), dashboard.processed),
        ("", _("Processing time, median (working days)"), dashboard.processing.median),
        ("", _("Processing time, 90th percentile (working days)"), dashboard.processing.p90),
        ("processed_within_due", _("Processed within the due date"), dashboard.processed_within_due),
        ("", _("Share processed within the due date, of the %(count)s processed mails that had one (%%)",
               count=dashboard.processed_with_due),
         percent(dashboard.processed_within_due, dashboard.processed_with_due)),
        ("backlog", _("Open mail today"), dashboard.backlog),
        ("late", _("Late mail today"), dashboard.late),
        ("acknowledged_in_time", _("Acknowledgements sent within the legal time"), acknowledgements.in_time),
        ("acknowledged_late", _("Acknowledgements sent late"), acknowledgements.late),
        ("acknowledgement_missing", _("Acknowledgements not sent, legal time passed"), acknowledgements.missing),
        ("", _("Share of acknowledgements sent within the legal time (%)"), percent(acknowledgements.in_time, acknowledgements.due)),
        ("implicit_decisions", _("Implicit decisions reached without a reply"), dashboard.implicit_decisions),
        ("opinions_overdue", _("Mail with an overdue opinion request"), dashboard.opinions_overdue_mails),
        ("", _("Overdue opinion requests"), dashboard.opinions_overdue_requests),
        ("", _("Distribution time, median (working days)"), dashboard.distribution.median),
        ("", _("Distribution time, 90th percentile (working days)"), dashboard.distribution.p90),
        ("unassigned", _("Mail registered without an assignee"), dashboard.unassigned),
        ("electronic", _("Registered electronically"), dashboard.dematerialisation.electronic),
        ("paper", _("Registered on paper"), dashboard.dematerialisation.paper),
    ]


def build_tables(dashboard: Dashboard, factor_specs: dict[str, Any], locale: str) -> dict[str, Table]:
    """Return every table of the dashboard, by id, with typed cells for the exports."""
    tables = [
        Table("summary", _("Key figures"), [_("Indicator"), _("Value")],
              [[label, value] for _indicator, label, value in summary_rows(dashboard)]),
        Table("trend", _("Mail registered and processed per period"), [_("From"), _("To"), _("Mail registered"), _("Mail processed")],
              [[point.start, point.end, point.received, point.processed] for point in dashboard.trend]),
        Table("departments", _("Per department"), [_("Code"), _("Department"), _("Registrations"), _("Open"), _("Late")],
              [[row.code, row.label, row.received, row.backlog, row.late] for row in dashboard.departments]),
        Table("backlog", _("Age of open mail"), [_("Age (calendar days)"), _("Open mail")],
              [[band.id, count] for band, count in dashboard.pyramid]),
        Table("agents", _("Late mail per agent"), [_("Agent"), _("Late mail")],
              [[row.name or _("No assignee"), row.late] for row in dashboard.agents]),
        Table("channels", _("Mail registered per channel"), [_("Channel"), _("Registrations"), _("Share (%)")],
              [[channel_label(channel), count, percent(count, dashboard.received)]
               for channel, count in sorted(dashboard.dematerialisation.by_channel.items())]),
        Table("dematerialisation", _("Paper and toner saved"), [_("Figure"), _("Value"), _("Unit")],
              dematerialisation_rows(dashboard, factor_specs, locale)),
    ]
    return {table.id: table for table in tables}


def dematerialisation_rows(dashboard: Dashboard, factor_specs: dict[str, Any], locale: str) -> list[list[Any]]:
    figures = dashboard.dematerialisation
    rows: list[list[Any]] = [
        [_("Attachments of mail registered electronically"), figures.attachments, _("documents")],
        [_("Pages read on screen instead of printed"), round(figures.pages, 2), _("pages")],
        [_("Paper saved"), round(figures.paper_grams / 1000, 3), "kg"],
        [_("Toner saved"), round(figures.toner_grams, 2), "g"],
    ]
    for factor_id in FACTOR_ORDER:
        spec = factor_specs.get(factor_id)
        if spec is not None:
            rows.append([_("Factor: %(label)s (%(source)s)", label=spec.labels.get(locale), source=spec.source.get(locale)),
                         spec.value, spec.unit.get(locale)])
    return rows


def build_charts(dashboard: Dashboard, url: UrlFor) -> dict[str, Markup]:
    """Return the SVG charts; ``url(indicator, **changes)`` gives each bar's drill-down link."""
    categories = [trend_label(dashboard, index) for index in range(len(dashboard.trend))]
    received = Series(_("Mail registered"), "bar-received", [
        Bar(categories[index], point.received, url("received", start=point.start, end=point.end))
        for index, point in enumerate(dashboard.trend)
    ])
    processed = Series(_("Mail processed"), "bar-processed", [
        Bar(categories[index], point.processed, url("processed", start=point.start, end=point.end))
        for index, point in enumerate(dashboard.trend)
    ])
    unit = _("week") if dashboard.trend_unit == "week" else _("month")
    charts = {
        "trend": grouped_columns(
            "chart-trend", _("Mail registered and processed per %(unit)s", unit=unit),
            _("Columns per %(unit)s: mail registered (arrival date) and mail processed (closing date).", unit=unit),
            categories, [received, processed],
        ),
        "departments": horizontal_bars(
            "chart-departments", _("Open mail per department"),
            _("One bar per handling department: open mail today, without its sub-departments."),
            [Bar(f"{row.code}", row.backlog, url("backlog", department_id=row.department_id, department_exact=True))
             for row in dashboard.departments],
            "bar-backlog",
        ),
        "late_departments": horizontal_bars(
            "chart-late-departments", _("Late mail per department"),
            _("One bar per handling department: open mail past its due date today."),
            [Bar(f"{row.code}", row.late, url("late", department_id=row.department_id, department_exact=True))
             for row in dashboard.departments if row.late],
            "bar-late",
        ),
        "pyramid": horizontal_bars(
            "chart-pyramid", _("Age of open mail"),
            _("Open mail by calendar days since its arrival, youngest first."),
            [Bar(_("%(band)s days", band=band.id), count, url("backlog", age_band=band.id)) for band, count in dashboard.pyramid],
            "bar-backlog",
        ),
        "channels": horizontal_bars(
            "chart-channels", _("Mail registered per channel"),
            _("Electronic channels: %(electronic)s; paper: %(paper)s.",
              electronic=", ".join(channel_label(item) for item in ELECTRONIC_CHANNELS),
              paper=", ".join(channel_label(item) for item in PAPER_CHANNELS)),
            [Bar(channel_label(channel), count, url("received", channel=channel))
             for channel, count in sorted(dashboard.dematerialisation.by_channel.items())],
            "bar-received",
        ),
    }
    return charts

"""The statistics dashboard, its drill-down lists, exports and printable monthly report."""

from __future__ import annotations

import calendar as month_calendar
from datetime import date
from typing import Any

from flask import Flask, Response, abort, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from app.attachments.filenames import content_disposition
from app.configuration.operations import current_configuration
from app.core.errors import PermissionDenied, ValidationFailed
from app.extensions import db
from app.mail.models import Mail
from app.mail.operations import today_in_paris
from app.mail.views import locale_code
from app.organisation.context import UserContext
from app.organisation.models import Department
from app.portal.access import login_required, require_user
from app.portal.paging import requested_page
from app.statistics.exports import Table, table_csv, table_xlsx
from app.statistics.filters import StatisticsFilter, may_open_statistics, parse_filter
from app.statistics.operations import (
    ACKNOWLEDGEMENT_DAYS,
    INDICATORS,
    Dashboard,
    build_dashboard,
    indicator_condition,
)
from app.statistics.presentation import build_charts, build_tables, summary_rows

LIST_PAGE_SIZE = 50
# The filters a drill-down list hands back to the dashboard; the others select one bar.
DASHBOARD_ARGUMENTS = ("start", "end", "department", "mail_type", "category", "channel")
# Maximum number of mails in a drill-down export. The list page shows the full total.
EXPORT_ROW_LIMIT = 100_000


def _statistics_user() -> UserContext:
    user = require_user()
    if not may_open_statistics(user):
        raise PermissionDenied(_("You do not have permission to see the statistics."))
    return user


def _filter(user: UserContext, arguments: dict[str, str] | None = None) -> StatisticsFilter:
    configuration = current_configuration()
    return parse_filter(dict(arguments if arguments is not None else request.args.items()), user,
                        set(configuration.mail_types), today_in_paris())


def _factors() -> tuple[dict[str, float], dict[str, Any]]:
    specs = current_configuration().conversion_factors
    return {key: spec.value for key, spec in specs.items()}, specs


def _dashboard(user: UserContext, filters: StatisticsFilter) -> Dashboard:
    values, _specs = _factors()
    return build_dashboard(user, filters, current_configuration(), today_in_paris(), locale_code(), values)


def _departments_in_scope(user: UserContext) -> list[Department]:
    statement = select(Department).order_by(Department.path)
    if not user.can("read_all"):
        statement = statement.where(Department.id.in_(sorted(user.scope_department_ids)))
    return list(db.session.execute(statement).scalars())


def _list_url_builder(filters: StatisticsFilter) -> Any:
    def build(indicator: str, **changes: Any) -> str:
        arguments: dict[str, Any] = {"indicator": indicator, **filters.query_arguments(**changes)}
        return url_for("StatisticsView.mail_list", **arguments)

    return build


def _download(content: bytes, name: str, fmt: str) -> Response:
    # The full Content-Type: given as mimetype, Werkzeug appended "; charset=utf-8" once more.
    content_type = ("text/csv; charset=utf-8" if fmt == "csv"
                    else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response = Response(content, content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition(f"{name}.{fmt}", "attachment")
    return response


def _file_stem(title: str, filters: Any) -> str:
    """Return an export's file name without extension, in the user's language: "statistiques - <table> - <dates>"."""
    prefix = _("statistics")
    return f"{prefix} - {title} - {filters.start.isoformat()} - {filters.end.isoformat()}"


def _export(table: Table, fmt: str, name: str) -> Response:
    if fmt == "csv":
        return _download(table_csv(table), name, fmt)
    if fmt == "xlsx":
        return _download(table_xlsx(table), name, fmt)
    abort(404)


class StatisticsView(BaseView):
    route_base = "/statistics"
    default_view = "index"

    @expose("/")
    @login_required
    def index(self) -> Any:
        user = _statistics_user()
        configuration = current_configuration()
        try:
            filters = _filter(user)
        except ValidationFailed as failure:
            return self.render_template(
                "statistics/dashboard.html", dashboard=None, errors=failure.field_errors, filters=None,
                arguments=request.args, departments=_departments_in_scope(user), configuration=configuration,
                locale=locale_code(),
            ), 400
        dashboard = _dashboard(user, filters)
        _values, specs = _factors()
        return self.render_template(
            "statistics/dashboard.html", dashboard=dashboard, errors={}, filters=filters, arguments=request.args,
            departments=_departments_in_scope(user), configuration=configuration, locale=locale_code(),
            charts=build_charts(dashboard, _list_url_builder(filters)), summary=summary_rows(dashboard),
            tables=build_tables(dashboard, specs, locale_code()), list_url=_list_url_builder(filters),
            factor_specs=specs, acknowledgement_days=ACKNOWLEDGEMENT_DAYS,
            export_arguments=filters.query_arguments(),
            report_arguments={key: value for key, value in filters.query_arguments().items() if key not in ("start", "end")},
        )

    @expose("/export/<table_id>.<fmt>")
    @login_required
    def export_table(self, table_id: str, fmt: str) -> Any:
        user = _statistics_user()
        filters = _filter(user)
        _values, specs = _factors()
        tables = build_tables(_dashboard(user, filters), specs, locale_code())
        if table_id not in tables:
            abort(404)
        return _export(tables[table_id], fmt, _file_stem(tables[table_id].title, filters))

    @expose("/mail")
    @login_required
    def mail_list(self) -> Any:
        """List the mail behind one figure: the indicator's condition with the dashboard's filters."""
        user = _statistics_user()
        indicator = request.args.get("indicator", "")
        if indicator not in INDICATORS:
            abort(404)
        filters = _filter(user)
        configuration = current_configuration()
        condition = indicator_condition(indicator, user, filters, configuration, today_in_paris())
        total = int(db.session.execute(select(func.count()).select_from(Mail).where(condition)).scalar_one())
        page = requested_page()
        items = list(db.session.execute(
            select(Mail).where(condition).order_by(Mail.arrival_date.desc(), Mail.id.desc())
            .limit(LIST_PAGE_SIZE).offset((page - 1) * LIST_PAGE_SIZE)
        ).scalars())
        arguments = {**filters.query_arguments(), "indicator": indicator}
        return self.render_template(
            "statistics/mail_list.html", items=items, total=total, page=page,
            pages=max(1, -(-total // LIST_PAGE_SIZE)), arguments=arguments, indicator=indicator,
            indicator_label=indicator_label(indicator), filters=filters, configuration=configuration,
            locale=locale_code(), state_of_today=indicator in TODAY_INDICATORS, today=today_in_paris(),
            dashboard_arguments={key: value for key, value in arguments.items() if key in DASHBOARD_ARGUMENTS},
        )

    @expose("/mail/export.<fmt>")
    @login_required
    def export_mail_list(self, fmt: str) -> Any:
        user = _statistics_user()
        indicator = request.args.get("indicator", "")
        if indicator not in INDICATORS:
            abort(404)
        filters = _filter(user)
        configuration = current_configuration()
        condition = indicator_condition(indicator, user, filters, configuration, today_in_paris())
        mails = db.session.execute(
            select(Mail).where(condition).options(joinedload(Mail.handling_department))
            .order_by(Mail.arrival_date.desc(), Mail.id.desc()).limit(EXPORT_ROW_LIMIT)
        ).scalars()
        locale = locale_code()
        rows = [
            [mail.chrono, _type_label(configuration, mail.mail_type, locale), mail.subject, mail.arrival_date,
             mail.due_date, mail.closed_at, _status_label(configuration, mail.status, locale),
             mail.handling_department.code]
            for mail in mails
        ]
        table = Table(indicator, indicator_label(indicator),
                      [_("Number"), _("Type"), _("Subject"), _("Arrival"), _("Due date"), _("Closed"), _("Status"),
                       _("Department")], rows)
        return _export(table, fmt, _file_stem(table.title, filters))

    @expose("/report")
    @login_required
    def monthly_report(self) -> Any:
        """Print one month: the dashboard's tables, one section per printed page, without navigation."""
        user = _statistics_user()
        month = _parse_month(request.args.get("month"), today_in_paris())
        first = month
        last = month.replace(day=month_calendar.monthrange(month.year, month.month)[1])
        arguments = {key: value for key, value in request.args.items() if key not in ("start", "end", "month")}
        filters = _filter(user, {**arguments, "start": first.isoformat(), "end": last.isoformat()})
        dashboard = _dashboard(user, filters)
        _values, specs = _factors()
        return self.render_template(
            "statistics/report.html", dashboard=dashboard, filters=filters, summary=summary_rows(dashboard),
            tables=build_tables(dashboard, specs, locale_code()), charts=build_charts(dashboard, _list_url_builder(filters)),
            month=first, locale=locale_code(), acknowledgement_days=ACKNOWLEDGEMENT_DAYS,
        )


def _parse_month(typed: str | None, today: date) -> date:
    if typed:
        try:
            year, month = (int(part) for part in typed.split("-", 1))
            return date(year, month, 1)
        except ValueError:
            raise ValidationFailed({"month": [_("Invalid month: use the format yyyy-mm, e.g. 2026-11.")]}) from None
    previous = today.replace(day=1)
    return date(previous.year - (previous.month == 1), (previous.month - 2) % 12 + 1, 1)


def _type_label(configuration: Any, type_id: str, locale: str) -> str:
    spec = configuration.mail_types.get(type_id)
    return spec.labels.get(locale) if spec else type_id


def _status_label(configuration: Any, status: str, locale: str) -> str:
    spec = configuration.statuses.get(status)
    return spec.labels.get(locale) if spec else status


# The figures that count mail in its state of today, whatever the period chosen.
TODAY_INDICATORS = frozenset({"backlog", "late", "opinions_overdue", "implicit_decisions"})


def indicator_label(indicator: str) -> str:
    labels = {
        "received": _("Mail registered"), "processed": _("Mail processed"),
        "processed_within_due": _("Processed within the due date"), "processed_late": _("Processed after the due date"),
        "backlog": _("Open mail today"), "late": _("Late mail today"),
        "acknowledged_in_time": _("Acknowledgements sent within the legal time"),
        "acknowledged_late": _("Acknowledgements sent late"),
        "acknowledgement_missing": _("Acknowledgements not sent, legal time passed"),
        "implicit_decisions": _("Implicit decisions reached without a reply"),
        "opinions_overdue": _("Mail with an overdue opinion request"),
        "unassigned": _("Mail registered without an assignee"),
        "electronic": _("Registered electronically"), "paper": _("Registered on paper"),
    }
    return labels[indicator]


def statistics_cell(value: Any) -> str:
    """Format a table cell: dates dd/mm/yyyy, decimals with the locale's separator, "—" for no value."""
    from flask_babel import format_decimal

    if value is None:
        return "—"
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):
        return format_decimal(value, format="#,##0.###")
    return str(value)


def register(app: Flask, appbuilder: AppBuilder) -> None:
    from app.statistics.presentation import channel_label

    appbuilder.add_view_no_menu(StatisticsView())
    app.jinja_env.filters["statistics_cell"] = statistics_cell
    app.jinja_env.filters["statistics_channel"] = channel_label
    app.jinja_env.globals["may_open_statistics"] = may_open_statistics

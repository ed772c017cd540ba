"""Statistics dashboard: every figure against plain Python over the same rows, drill-down lists, exports, scope."""

from __future__ import annotations

import csv
import html
import io
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.configuration.operations import current_configuration
from app.deadlines.calendar import get_calendar
from app.deadlines.legal import MissingDocumentsRequest, add_months, implicit_decision_date
from app.mail.operations import today_in_paris
from tests.conftest import user_context

PARIS = ZoneInfo("Europe/Paris")
SEED = 61
MAIL_COUNT = 160
DEPARTMENTS = ("DMI-SSE", "DMI-SSE-BPT", "DMI-SSE-BRT", "DMI-SN", "CAB-BRE", "CAB", "SG-BC")
AGENTS = {"DMI-SSE-BPT": "sejour", "DMI-SSE-BRT": "renouvellement", "DMI-SN": "naturalisation", "CAB-BRE": "cabinet",
          "DMI-SSE": "chef.sejour", "CAB": "directeur.cabinet", "SG-BC": "courrier"}
CHANNELS = ("post", "email", "web", "hand", "internal")


@dataclass
class Row:
    """One generated mail as the test built it, independently of the database."""

    id: int = 0
    department: str = ""
    mail_type: str = ""
    category: str = ""
    channel: str = ""
    arrival: date = date(2026, 1, 1)
    due: date | None = None
    created_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    closed_at: datetime | None = None
    confidential: bool = False
    assignee: str | None = None
    # (time, from assignee, to assignee) of the "assign" history entries, oldest first.
    assignments: list[tuple[datetime, str | None, str | None]] = field(default_factory=list)
    acknowledgement_sent: datetime | None = None
    # (due date, answered) of the opinion requests.
    opinions: list[tuple[date, bool]] = field(default_factory=list)
    attachments: int = 0
    missing_documents: tuple[date, date, date | None] | None = None
    # Mail without a sender needs no acknowledgement of receipt.
    has_sender: bool = True

    @property
    def open(self) -> bool:
        return self.closed_at is None


def _paris_day(moment: datetime) -> date:
    return moment.astimezone(PARIS).date()


def generate_rows(today: date) -> list[Row]:
    """Build mail with controlled dates: closings near midnight, both sides of summer time, every channel."""
    configuration = current_configuration()
    rng = random.Random(SEED)
    types = sorted(configuration.mail_types)
    rows: list[Row] = []
    for index in range(MAIL_COUNT):
        spec = configuration.mail_types[types[index % len(types)]]
        department = DEPARTMENTS[rng.randrange(len(DEPARTMENTS))]
        arrival = today - timedelta(days=rng.randrange(0, 400))
        created_at = datetime.combine(arrival, time(rng.choice([7, 9, 16, 21])), tzinfo=PARIS).astimezone(UTC)
        created_at += timedelta(days=rng.choice([0, 0, 0, 1, 3]))
        row = Row(
            department=department, mail_type=spec.id, category=spec.category, channel=rng.choice(CHANNELS),
            arrival=arrival, due=arrival + timedelta(days=rng.randrange(5, 60)) if rng.random() < 0.85 else None,
            created_at=created_at, confidential=rng.random() < 0.12,
            attachments=rng.randrange(0, 4), has_sender=rng.random() < 0.9,
        )
        if rng.random() < 0.6:
            # UTC hours 22 and 23 fall on the next day in Paris.
            closed = datetime.combine(arrival + timedelta(days=rng.randrange(0, 70)), time(rng.choice([8, 15, 22, 23]), 30), tzinfo=UTC)
            if closed < datetime.now(UTC) - timedelta(hours=1):
                row.closed_at = closed
        draw = rng.random()
        if draw < 0.35:
            row.assignee = AGENTS[department]
        elif draw < 0.65:
            at = created_at + timedelta(days=rng.randrange(0, 12), hours=rng.randrange(0, 20))
            row.assignments.append((at, None, AGENTS[department]))
            row.assignee = AGENTS[department]
        elif draw < 0.75:
            # Assigned at registration, then handed to another agent.
            row.assignments.append((created_at + timedelta(days=2), "admin", AGENTS[department]))
            row.assignee = AGENTS[department]
        if spec.acknowledgement != "none" and rng.random() < 0.6:
            sent = datetime.combine(arrival + timedelta(days=rng.randrange(0, 25)), time(rng.choice([9, 22, 23])), tzinfo=UTC)
            if sent < datetime.now(UTC):
                row.acknowledgement_sent = sent
        if rng.random() < 0.15:
            row.opinions.append((today + timedelta(days=rng.randrange(-20, 10)), rng.random() < 0.4))
        rows.append(row)
    # One open mail of a type with a legal regime whose clock a missing-documents request moved.
    regime_type = next(key for key in types if configuration.mail_types[key].acknowledgement != "none")
    special = Row(department="DMI-SSE-BPT", mail_type=regime_type, category="incoming", channel="post",
                  arrival=today - timedelta(days=200), due=today - timedelta(days=150),
                  created_at=datetime.combine(today - timedelta(days=200), time(9), tzinfo=UTC),
                  missing_documents=(today - timedelta(days=190), today - timedelta(days=160), today - timedelta(days=20)))
    rows.append(special)
    return rows


def store_rows(rows: list[Row]) -> None:
    """Insert the rows with the models, bypassing the operations so that every date is the test's."""
    from flask_appbuilder.security.sqla.models import User

    from app.attachments.models import Attachment
    from app.correspondents.models import Correspondent
    from app.deadlines.models import MissingDocumentsRecord
    from app.distribution.models import DistributionEntry
    from app.documents.models import Document
    from app.extensions import db
    from app.mail.models import HistoryEntry, Mail, MailCorrespondent
    from app.organisation.models import Department

    configuration = current_configuration()
    departments = dict(db.session.execute(select(Department.code, Department.id)).all())
    users = dict(db.session.execute(select(User.username, User.id)).all())
    closed = sorted(configuration.closed_statuses)
    for number, row in enumerate(rows, start=1):
        mail = Mail(
            chrono=f"STAT/{number:05d}", chrono_year=2026, chrono_number=number, category=row.category,
            mail_type=row.mail_type, subject=f"Courrier statistique {number}", arrival_date=row.arrival,
            due_date=row.due, channel=row.channel, priority="normal", confidential=row.confidential,
            status=closed[0] if row.closed_at else "in_progress", handling_department_id=departments[row.department],
            assignee_id=users[row.assignee] if row.assignee else None, fields={},
            schema_version=configuration.version, created_at=row.created_at, updated_at=row.created_at,
            created_by_id=users["courrier"], closed_at=row.closed_at,
        )
        db.session.add(mail)
        db.session.flush()
        row.id = mail.id
        db.session.add(HistoryEntry(mail_id=mail.id, at=row.created_at, actor_id=users["courrier"], event="registered", details={}))
        if row.has_sender:
            sender = Correspondent(last_name=f"Usager {number}", name_key=f"usager {number}", created_at=row.created_at)
            db.session.add(MailCorrespondent(mail_id=mail.id, correspondent=sender, role="sender"))
        for at, source, target in row.assignments:
            db.session.add(HistoryEntry(
                mail_id=mail.id, at=at, actor_id=users["admin"], event="assign",
                details={"operation": "assign", "from_assignee_id": users[source] if source else None,
                         "to_assignee_id": users[target] if target else None},
            ))
        if row.acknowledgement_sent:
            db.session.add(Document(mail_id=mail.id, kind="acknowledgement", state="sent", title="AR",
                                    sent_at=row.acknowledgement_sent, created_at=row.created_at))
        for due, answered in row.opinions:
            db.session.add(DistributionEntry(
                mail_id=mail.id, role="opinion", user_id=users["naturalisation"], requested_by_id=users["admin"],
                requested_at=row.created_at, due_date=due,
                answered_at=datetime.now(UTC) if answered else None, answer="Avis" if answered else None,
            ))
        for attachment in range(row.attachments):
            db.session.add(Attachment(mail_id=mail.id, sha256=f"{mail.id:032d}{attachment:032d}", size=10,
                                      display_name=f"piece-{attachment}.pdf", content_type="application/pdf"))
        if row.missing_documents:
            requested, deadline, received = row.missing_documents
            db.session.add(MissingDocumentsRecord(mail_id=mail.id, requested_on=requested, deadline=deadline,
                                                  received_on=received, documents=["Justificatif"]))
    db.session.commit()


# --- The expected figures, in plain Python ----------------------------------------------


@dataclass
class Scope:
    """Which rows a user sees: department codes of the scope (None = all) and the user's own name."""

    departments: set[str] | None
    username: str

    def sees(self, row: Row) -> bool:
        if self.departments is None:
            return True
        if row.department not in self.departments:
            return False
        return not row.confidential or row.assignee == self.username


def nearest_rank(values: list[int], fraction: float) -> int | None:
    ordered = sorted(values)
    if not ordered:
        return None
    position = -(-len(ordered) * fraction // 1)  # ceil
    return ordered[max(1, int(position)) - 1]


def expected_figures(rows: list[Row], scope: Scope, start: date, end: date, today: date) -> dict[str, Any]:
    configuration = current_configuration()
    working = get_calendar("metropole")
    # Opinion requests go to an agent of DMI-SN, so they list none of the scoped users of these tests.
    seen = [row for row in rows if scope.sees(row)]
    received = [row for row in seen if start <= row.arrival <= end]
    processed = [row for row in seen if row.closed_at and start <= _paris_day(row.closed_at) <= end]
    with_due = [row for row in processed if row.due]
    open_rows = [row for row in seen if row.open]
    late = [row for row in open_rows if row.due and row.due < today]

    durations = [working.count_working_days(row.arrival, _paris_day(row.closed_at)) for row in processed]

    acknowledgements = Counter()
    for row in received:
        spec = configuration.mail_types[row.mail_type]
        if spec.acknowledgement == "none" or not row.has_sender:
            continue
        limit = row.arrival + timedelta(days=7)
        if row.acknowledgement_sent:
            acknowledgements["in_time" if _paris_day(row.acknowledgement_sent) <= limit else "late"] += 1
        else:
            acknowledgements["missing" if limit < today else "pending"] += 1

    implicit = 0
    for row in open_rows:
        spec = configuration.mail_types[row.mail_type]
        if spec.acknowledgement == "none":
            continue
        delay = spec.implicit_decision_delay
        if row.missing_documents:
            requested, deadline, received_on = row.missing_documents
            decided = implicit_decision_date(row.arrival, spec.acknowledgement, months=delay.months or 0, days=delay.days,
                                             missing_documents=[MissingDocumentsRequest(requested, deadline, received_on)])
        elif delay.days is not None:
            decided = row.arrival + timedelta(days=delay.days)
        else:
            decided = add_months(row.arrival, delay.months or 0)
        implicit += decided is not None and decided < today

    distribution = []
    for row in received:
        first = None
        changes = [item for item in row.assignments]
        if changes and changes[0][1] is not None:
            first = row.created_at
        elif changes:
            first = next((at for at, _source, target in changes if target), None)
        elif row.assignee:
            first = row.created_at
        if first is not None:
            distribution.append(working.count_working_days(row.arrival, _paris_day(first)))

    bands = [(0, 7), (8, 15), (16, 30), (31, 60), (61, 90), (91, 180), (181, None)]
    pyramid = Counter()
    for row in open_rows:
        age = (today - row.arrival).days
        band = next(f"{low}-{high}" if high is not None else f"{low}+" for low, high in bands if high is None or age <= high)
        pyramid[band] += 1

    overdue_opinion_rows = [row for row in seen if any(due < today and not answered for due, answered in row.opinions)]
    return {
        "received": len(received),
        "processed": len(processed),
        "median": nearest_rank(durations, 0.5),
        "p90": nearest_rank(durations, 0.9),
        "with_due": len(with_due),
        "within_due": sum(1 for row in with_due if _paris_day(row.closed_at) <= row.due),
        "backlog": len(open_rows),
        "late": len(late),
        "late_by_department": Counter(row.department for row in late),
        "late_by_agent": Counter(row.assignee for row in late),
        "pyramid": pyramid,
        "acknowledgements": acknowledgements,
        "implicit": implicit,
        "opinion_requests": sum(1 for row in seen for due, answered in row.opinions if due < today and not answered),
        "opinion_mails": len(overdue_opinion_rows),
        "distribution_median": nearest_rank(distribution, 0.5),
        "distribution_p90": nearest_rank(distribution, 0.9),
        "distribution_count": len(distribution),
        "unassigned": sum(1 for row in received if row.assignee is None),
        "channels": Counter(row.channel for row in received),
        "attachments": sum(row.attachments for row in received if row.channel in ("email", "web")),
    }


# --- Fixtures ----------------------------------------------------------------------------


@pytest.fixture()
def dataset(app):
    with app.app_context():
        today = today_in_paris()
        rows = generate_rows(today)
        store_rows(rows)
        return rows


def _dashboard(username: str, start: date, end: date, **arguments: str):
    from app.statistics.filters import parse_filter
    from app.statistics.operations import build_dashboard

    configuration = current_configuration()
    user = user_context(username)
    today = today_in_paris()
    filters = parse_filter({"start": start.isoformat(), "end": end.isoformat(), **arguments}, user,
                           set(configuration.mail_types), today)
    factors = {key: spec.value for key, spec in configuration.conversion_factors.items()}
    return build_dashboard(user, filters, configuration, today, "fr", factors), filters


def _department_codes(tree_root: str) -> set[str]:
    return {code for code in DEPARTMENTS if code == tree_root or code.startswith(tree_root + "-")}


# --- Known answers -----------------------------------------------------------------------


@pytest.mark.parametrize(("username", "scope_root"), [("admin", None), ("chef.sejour", "DMI-SSE"), ("directeur.cabinet", "CAB")])
def test_figures_equal_independent_computation(app, dataset, username, scope_root):
    with app.app_context():
        today = today_in_paris()
        start, end = today - timedelta(days=300), today - timedelta(days=10)
        dashboard, _filters = _dashboard(username, start, end)
        scope = Scope(_department_codes(scope_root) if scope_root else None, username)
        expected = expected_figures(dataset, scope, start, end, today)

        assert dashboard.received == expected["received"]
        assert dashboard.processed == expected["processed"]
        assert dashboard.processing.median == expected["median"]
        assert dashboard.processing.p90 == expected["p90"]
        assert dashboard.processed_with_due == expected["with_due"]
        assert dashboard.processed_within_due == expected["within_due"]
        assert dashboard.backlog == expected["backlog"]
        assert dashboard.late == expected["late"]
        assert {row.code: row.late for row in dashboard.departments if row.late} == dict(expected["late_by_department"])
        names = {row.user_id: row.late for row in dashboard.agents}
        expected_agents = {(user_context(name).user_id if name else None): count for name, count in expected["late_by_agent"].items()}
        assert names == expected_agents
        assert {band.id: count for band, count in dashboard.pyramid if count} == dict(expected["pyramid"])
        assert dashboard.acknowledgements.in_time == expected["acknowledgements"]["in_time"]
        assert dashboard.acknowledgements.late == expected["acknowledgements"]["late"]
        assert dashboard.acknowledgements.missing == expected["acknowledgements"]["missing"]
        assert dashboard.acknowledgements.pending == expected["acknowledgements"]["pending"]
        assert dashboard.implicit_decisions == expected["implicit"]
        assert dashboard.opinions_overdue_requests == expected["opinion_requests"]
        assert dashboard.opinions_overdue_mails == expected["opinion_mails"]
        assert dashboard.distribution.count == expected["distribution_count"]
        assert dashboard.distribution.median == expected["distribution_median"]
        assert dashboard.distribution.p90 == expected["distribution_p90"]
        assert dashboard.unassigned == expected["unassigned"]
        assert dashboard.dematerialisation.by_channel == dict(expected["channels"])
        assert dashboard.dematerialisation.attachments == expected["attachments"]
        assert sum(point.received for point in dashboard.trend) == expected["received"]
        assert sum(point.processed for point in dashboard.trend) == expected["processed"]


def test_dataset_covers_every_case(app, dataset):
    """The generated rows reach every figure, so that the comparisons above compare something."""
    with app.app_context():
        today = today_in_paris()
        expected = expected_figures(dataset, Scope(None, "admin"), today - timedelta(days=300), today - timedelta(days=10), today)
        for key in ("received", "processed", "within_due", "late", "implicit", "opinion_requests", "unassigned", "attachments"):
            assert expected[key] > 0, key
        assert expected["median"] != expected["p90"]
        assert set(expected["acknowledgements"]) >= {"in_time", "late", "missing"}
        assert any(row.closed_at and row.closed_at.astimezone(PARIS).date() != row.closed_at.date() for row in dataset)


def test_filters_narrow_figures(app, dataset):
    with app.app_context():
        today = today_in_paris()
        start, end = today - timedelta(days=390), today
        dashboard, _filters = _dashboard("admin", start, end, channel="email", category="incoming")
        expected = sum(1 for row in dataset if row.channel == "email" and row.category == "incoming" and start <= row.arrival <= end)
        assert dashboard.received == expected
        from app.extensions import db
        from app.organisation.models import Department

        sse = db.session.execute(select(Department.id).where(Department.code == "DMI-SSE")).scalar_one()
        tree, _filters = _dashboard("admin", start, end, department=str(sse))
        assert tree.received == sum(1 for row in dataset if row.department in _department_codes("DMI-SSE") and start <= row.arrival <= end)
        exact, _filters = _dashboard("admin", start, end, department=str(sse), exact="1")
        assert exact.received == sum(1 for row in dataset if row.department == "DMI-SSE" and start <= row.arrival <= end)


# --- Drill-down lists equal the figures ---------------------------------------------------


def _list_total(client, indicator: str, arguments: dict[str, str]) -> int:
    import re

    response = client.get("/statistics/mail", query_string={"indicator": indicator, **arguments})
    assert response.status_code == 200, f"{indicator} {arguments}: {response.status_code}"
    match = re.search(r'id="statistics-list-total">(\d+)<', response.get_data(as_text=True))
    assert match, indicator
    return int(match.group(1))


@pytest.mark.parametrize("username", ["admin", "chef.sejour"])
def test_drill_down_counts_equal_figures(app, dataset, client_as, username):
    client = client_as(username)
    with app.app_context():
        today = today_in_paris()
        start, end = today - timedelta(days=300), today - timedelta(days=10)
        dashboard, filters = _dashboard(username, start, end)
        arguments = filters.query_arguments()
        figures = {
            "received": dashboard.received, "processed": dashboard.processed,
            "processed_within_due": dashboard.processed_within_due,
            "processed_late": dashboard.processed_with_due - dashboard.processed_within_due,
            "backlog": dashboard.backlog, "late": dashboard.late,
            "acknowledged_in_time": dashboard.acknowledgements.in_time,
            "acknowledged_late": dashboard.acknowledgements.late,
            "acknowledgement_missing": dashboard.acknowledgements.missing,
            "implicit_decisions": dashboard.implicit_decisions, "opinions_overdue": dashboard.opinions_overdue_mails,
            "unassigned": dashboard.unassigned, "electronic": dashboard.dematerialisation.electronic,
            "paper": dashboard.dematerialisation.paper,
        }
        bars = [("late", {"department": str(row.department_id), "exact": "1"}, row.late) for row in dashboard.departments]
        bars += [("backlog", {"department": str(row.department_id), "exact": "1"}, row.backlog) for row in dashboard.departments]
        bars += [("backlog", {"age_band": band.id}, count) for band, count in dashboard.pyramid]
        bars += [("late", {"assignee": str(row.user_id) if row.user_id else "none"}, row.late) for row in dashboard.agents]
        bars += [("received", {"start": point.start.isoformat(), "end": point.end.isoformat()}, point.received) for point in dashboard.trend]
        bars += [("processed", {"start": point.start.isoformat(), "end": point.end.isoformat()}, point.processed) for point in dashboard.trend]
        bars += [("received", {"channel": channel}, count) for channel, count in dashboard.dematerialisation.by_channel.items()]
    for indicator, value in figures.items():
        assert _list_total(client, indicator, arguments) == value, indicator
    for indicator, changes, value in bars:
        assert _list_total(client, indicator, {**arguments, **changes}) == value, (indicator, changes)


def test_late_figure_equals_late_basket(app, dataset, client_as):
    """The dashboard's late mail of a head of department equals the count of their "En retard" basket."""
    from app.mail.baskets import count_basket, get_basket

    with app.app_context():
        today = today_in_paris()
        for username in ("chef.sejour", "directeur.cabinet", "sejour"):
            if username == "sejour":
                continue
            dashboard, _filters = _dashboard(username, today - timedelta(days=30), today)
            user = user_context(username)
            basket = get_basket(current_configuration(), "late", user)
            assert dashboard.late == count_basket(user, basket), username
            assert dashboard.late > 0, username


def test_received_figure_equals_register_list(app, dataset):
    """For the administrator the register filtered on arrival dates lists the mail the dashboard counts as received."""
    from app.mail.baskets import RegisterFilter, register_page

    with app.app_context():
        today = today_in_paris()
        start, end = today - timedelta(days=200), today - timedelta(days=20)
        dashboard, _filters = _dashboard("admin", start, end)
        _items, total = register_page(user_context("admin"), RegisterFilter(arrival_from=start, arrival_to=end), 1, 10)
        assert total == dashboard.received
        typed, _filters = _dashboard("admin", start, end, mail_type="public_complaint")
        _items, typed_total = register_page(
            user_context("admin"), RegisterFilter(mail_type="public_complaint", arrival_from=start, arrival_to=end), 1, 10
        )
        assert typed_total == typed.received


@pytest.mark.parametrize(("indicator", "title", "period"), [
    ("received", "Courrier enregistré", True), ("processed", "Courrier traité", True),
    ("backlog", "Courrier en cours aujourd'hui", False), ("implicit_decisions", "Décisions implicites nées sans réponse", False),
])
def test_list_says_whether_its_figure_follows_the_period(dataset, client_as, indicator, title, period):
    page = client_as("admin").get("/statistics/mail", query_string={
        "indicator": indicator, "start": "2026-01-01", "end": "2026-01-31",
    }).get_data(as_text=True).replace("&#39;", "'")

    assert f"<title>{title}" in page
    assert ("période du 01/01/2026 au 31/01/2026" in page) is period
    assert ("quelle que soit la période" in page) is not period


# --- Scope: a manager never sees another direction ----------------------------------------


def _department_id(code: str) -> int:
    from app.extensions import db
    from app.organisation.models import Department

    return db.session.execute(select(Department.id).where(Department.code == code)).scalar_one()


def test_other_direction_refused_everywhere(app, dataset, client_as):
    client = client_as("chef.sejour")
    with app.app_context():
        cabinet = _department_id("CAB-BRE")
        own = _department_id("DMI-SSE-BPT")
    urls = [
        "/statistics/", "/statistics/mail?indicator=received", "/statistics/mail?indicator=late",
        "/statistics/export/summary.csv", "/statistics/export/departments.xlsx", "/statistics/mail/export.csv?indicator=received",
        "/statistics/mail/export.xlsx?indicator=backlog", "/statistics/report",
    ]
    for url in urls:
        joiner = "&" if "?" in url else "?"
        assert client.get(f"{url}{joiner}department={cabinet}").status_code == 403, url
        assert client.get(f"{url}{joiner}department={own}").status_code == 200, url


def test_manager_figures_exclude_other_directions(app, dataset, client_as):
    client = client_as("chef.sejour")
    response = client.get("/statistics/export/departments.csv")
    text = response.get_data().decode("utf-8-sig")
    codes = {line.split(";")[0] for line in text.splitlines()[1:]}
    assert codes and codes <= _department_codes("DMI-SSE")
    listing = client.get("/statistics/mail/export.csv?indicator=received&start=" + (today_in_paris() - timedelta(days=500)).isoformat())
    rows = list(csv.reader(io.StringIO(listing.get_data().decode("utf-8-sig")), delimiter=";"))[1:]
    assert rows
    assert {row[7] for row in rows} <= _department_codes("DMI-SSE")
    # Confidential mail of the department that the head is not listed on stays out of his figures.
    hidden = [row for row in dataset if row.confidential and row.department in _department_codes("DMI-SSE")
              and row.assignee != "chef.sejour"]
    assert hidden
    listed = {row[0] for row in rows}
    with app.app_context():
        from app.extensions import db
        from app.mail.models import Mail

        hidden_chronos = set(db.session.execute(select(Mail.chrono).where(Mail.id.in_([row.id for row in hidden]))).scalars())
    assert not (listed & hidden_chronos)


def test_agent_without_permission_refused(app, client_as):
    assert client_as("sejour").get("/statistics/").status_code == 403
    assert client_as("admin").get("/statistics/").status_code == 200


# --- Exports --------------------------------------------------------------------------------


def test_csv_for_french_excel(app, dataset, client_as):
    client = client_as("admin")
    response = client.get("/statistics/export/trend.csv")
    data = response.get_data()
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert data.startswith("\ufeff".encode())
    # The file is named in the user's language, after the table's title.
    assert "filename*=UTF-8''statistiques%20-%20" in response.headers["Content-Disposition"]
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].count(";") == 3
    first = lines[1].split(";")
    assert len(first[0]) == 10
    assert first[0][2] == "/"
    assert first[0][5] == "/"
    summary = client.get("/statistics/export/summary.csv").get_data().decode("utf-8-sig")
    assert any("," in line.split(";")[1] for line in summary.splitlines()[1:] if line.split(";")[1].replace(",", "").isdigit())


def test_xlsx_export_holds_figures(app, dataset, client_as):
    from openpyxl import load_workbook

    client = client_as("admin")
    response = client.get("/statistics/export/departments.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    values = list(sheet.iter_rows(values_only=True))
    with app.app_context():
        dashboard, _filters = _dashboard("admin", *__import__("app.statistics.filters", fromlist=["default_period"]).default_period(today_in_paris()))
    assert sum(row[2] for row in values[1:]) == dashboard.received


def test_csv_cell_neutralises_formulas():
    from app.statistics.exports import csv_cell

    assert csv_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert csv_cell(1234.5) == "1234,5"
    assert csv_cell(0.005) == "0,005"
    assert csv_cell(2.0) == "2"
    assert csv_cell(date(2026, 2, 3)) == "03/02/2026"


def test_dashboard_and_report_render(app, dataset, client_as):
    client = client_as("admin")
    page = client.get("/statistics/").get_data(as_text=True)
    assert "<svg" in page
    assert 'role="img"' in page
    assert "chart-link" in page
    dashboard = page.split('id="statistics-dashboard"', 1)[1].split("estafette-footer", 1)[0]
    assert "<script" not in dashboard
    assert "http://" not in dashboard
    assert "https://" not in dashboard
    report = client.get("/statistics/report")
    assert report.status_code == 200
    text = report.get_data(as_text=True)
    assert "page-break-after: always" in text
    assert "estafette-baskets" not in text


def test_invalid_filters_rejected(app, client_as):
    client = client_as("admin")
    assert client.get("/statistics/?start=31/02/2026").status_code == 400
    assert client.get("/statistics/?start=10/02/2026&end=01/02/2026").status_code == 400
    assert client.get("/statistics/mail?indicator=unknown").status_code == 404


def test_paris_date_in_sql_matches_zoneinfo(app_context):
    """The SQL conversion of UTC timestamps to Paris days agrees with zoneinfo around both summer time changes."""
    from sqlalchemy import literal

    from app.core.types import UTCDateTime
    from app.extensions import db
    from app.statistics.filters import as_date, paris_date

    moments = [datetime(2026, 3, 29, 0, 59, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
               datetime(2026, 10, 24, 22, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 59, tzinfo=UTC),
               datetime(2026, 10, 25, 23, 0, tzinfo=UTC), datetime(2026, 7, 14, 22, 0, tzinfo=UTC),
               datetime(2026, 12, 31, 23, 0, tzinfo=UTC)]
    for moment in moments:
        value = db.session.execute(select(paris_date(literal(moment, UTCDateTime()), 2025, 2027))).scalar_one()
        assert as_date(value) == moment.astimezone(PARIS).date(), moment


def test_histogram_percentiles_match_sorted_values():
    from app.statistics.operations import DurationSummary, nearest_rank

    rng = random.Random(7)
    for size in (1, 2, 3, 10, 11, 250):
        values = [rng.randrange(0, 40) for _ in range(size)]
        summary = DurationSummary(dict(Counter(values)))
        assert summary.median == nearest_rank(values, 0.5), values
        assert summary.p90 == nearest_rank(values, 0.9), values
    assert DurationSummary({}).median is None


def test_chart_labels_escaped():
    from app.statistics.charts import Bar, horizontal_bars

    svg = str(horizontal_bars("chart-x", "<b>Titre</b>", "Description", [Bar("<script>alert(1)</script>", 3, "/statistics/mail?a=1&b=2")]))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "a=1&amp;b=2" in svg
    assert "<b>" not in svg


def test_conversion_factors_validated():
    from pathlib import Path

    from app.configuration.loader import LoadFailed, SourceFile, load_configuration, read_sources

    schemas = Path(__file__).resolve().parents[2] / "schemas"
    sources = read_sources(schemas)
    loaded = load_configuration(sources)
    assert loaded.conversion_factors["paper_grams_per_sheet"].value == 4.99
    assert set(loaded.conversion_factors) == {"pages_per_attachment", "sheets_per_page", "paper_grams_per_sheet", "toner_grams_per_page"}

    broken = [
        SourceFile(source.name, source.text.replace("value: 4.99", "value: -1")) if source.name == "statistics.yaml" else source
        for source in sources
    ]
    with pytest.raises(LoadFailed) as failure:
        load_configuration(broken)
    assert [error.file for error in failure.value.errors] == ["statistics.yaml"]


# --- Counters: the same figures as the mail rows ------------------------------------------


def _figures(dashboard) -> dict[str, Any]:
    """Every figure of a dashboard, in a form two dashboards can be compared with."""
    return {
        "received": dashboard.received, "processed": dashboard.processed,
        "processing": dashboard.processing.histogram, "with_due": dashboard.processed_with_due,
        "within_due": dashboard.processed_within_due, "backlog": dashboard.backlog, "late": dashboard.late,
        "pyramid": [(band.id, count) for band, count in dashboard.pyramid],
        "departments": [(row.code, row.received, row.backlog, row.late) for row in dashboard.departments],
        "agents": [(row.user_id, row.late) for row in dashboard.agents],
        "trend": [(point.start, point.end, point.received, point.processed) for point in dashboard.trend],
        "acknowledgements": dashboard.acknowledgements, "implicit": dashboard.implicit_decisions,
        "opinions": (dashboard.opinions_overdue_requests, dashboard.opinions_overdue_mails),
        "distribution": dashboard.distribution.histogram, "unassigned": dashboard.unassigned,
        "channels": dashboard.dematerialisation.by_channel, "attachments": dashboard.dematerialisation.attachments,
    }


def _both_paths(username: str, start: date, end: date, **arguments: str) -> tuple[Any, Any]:
    from app.statistics.filters import parse_filter
    from app.statistics.operations import build_dashboard

    configuration = current_configuration()
    user = user_context(username)
    today = today_in_paris()
    filters = parse_filter({"start": start.isoformat(), "end": end.isoformat(), **arguments}, user,
                           set(configuration.mail_types), today)
    counted = build_dashboard(user, filters, configuration, today)
    live = build_dashboard(user, filters, configuration, today, counters=False)
    return counted, live


COUNTER_CASES = [
    {}, {"channel": "email"}, {"category": "incoming"}, {"mail_type": "public_complaint"}, {"age_band": "31-60"},
]


@pytest.mark.parametrize("username", ["admin", "chef.sejour", "directeur.cabinet"])
def test_counters_equal_mail_rows(app, dataset, username):
    with app.app_context():
        today = today_in_paris()
        periods = [(today - timedelta(days=364), today), (today - timedelta(days=300), today - timedelta(days=10)),
                   (today - timedelta(days=80), today - timedelta(days=3)), (today - timedelta(days=700), today)]
        for start, end in periods:
            for arguments in COUNTER_CASES:
                counted, live = _both_paths(username, start, end, **arguments)
                assert counted.extras["counters"], (start, end, arguments)
                assert not live.extras["counters"]
                assert _figures(counted) == _figures(live), (username, start, end, arguments)
        sse = _department_id("DMI-SSE")
        for arguments in ({"department": str(sse)}, {"department": str(sse), "exact": "1"}):
            counted, live = _both_paths(username if username != "directeur.cabinet" else "admin",
                                        today - timedelta(days=364), today, **arguments)
            assert _figures(counted) == _figures(live), arguments


def _counter_rows() -> set[tuple[Any, ...]]:
    from app.extensions import db
    from app.statistics.models import StatisticsCount

    rows = db.session.execute(select(StatisticsCount.__table__).where(StatisticsCount.count != 0)).all()
    return {tuple(row) for row in rows}


def test_counters_follow_operations(app_context):
    """Registration and actions keep the counters equal to the mail rows and to a rebuild from scratch."""
    from app.actions.operations import ActionInput, perform_action
    from app.correspondents.operations import CorrespondentInput
    from app.mail.operations import Registration, register_mail
    from app.statistics.cli import rebuild

    today = today_in_paris()
    ids = []
    for days_ago, confidential in ((40, False), (3, True), (12, False), (0, False)):
        mail = register_mail(user_context("courrier"), Registration(
            mail_type="residence_permit_request", subject="Demande de titre de séjour",
            arrival_date=today - timedelta(days=days_ago), confidential=confidential,
            fields={"foreign_national_number": "0123456789", "permit_kind": "first_request", "nationality": "Malienne"},
            correspondent=CorrespondentInput(last_name="Diallo", first_name="Awa", confirm_new=True),
        ))
        ids.append(mail.id)

    def act(username: str, mail_id: int, action_id: str, **values: Any) -> None:
        perform_action(user_context(username), mail_id, action_id, ActionInput(**values))

    act("sejour", ids[0], "qualify")
    act("admin", ids[1], "assign", assignee_id=user_context("sejour").user_id)
    act("sejour", ids[2], "redirect", department="DMI-SSE-BRT", comment="Renouvellement")
    act("sejour", ids[0], "close")
    act("sejour", ids[3], "close")
    act("sejour", ids[3], "reopen", comment="Pièce nouvelle reçue")

    for username in ("admin", "chef.sejour"):
        for start in (today - timedelta(days=364), today - timedelta(days=20)):
            counted, live = _both_paths(username, start, today)
            assert counted.extras["counters"]
            assert _figures(counted) == _figures(live), (username, start)
    counted, _live = _both_paths("admin", today - timedelta(days=364), today)
    assert counted.received == 4
    assert counted.processed == 1

    incremental = _counter_rows()
    assert rebuild() == 4
    assert _counter_rows() == incremental


def test_counters_unused_until_rebuild(app, dataset):
    """Without the state row (SQL writes, configuration change) the dashboard reads the mail rows, until a rebuild."""
    from app.extensions import db
    from app.statistics.cli import rebuild
    from app.statistics.counters import invalidate_counters

    with app.app_context():
        today = today_in_paris()
        before, _live = _both_paths("chef.sejour", today - timedelta(days=364), today)
        invalidate_counters(db.session.connection(), "test")
        db.session.commit()
        invalid, _live = _both_paths("chef.sejour", today - timedelta(days=364), today)
        assert not invalid.extras["counters"]
        assert _figures(invalid) == _figures(before)
        rows = _counter_rows()
        assert rebuild() == len(dataset)
        rebuilt, _live = _both_paths("chef.sejour", today - timedelta(days=364), today)
        assert rebuilt.extras["counters"]
        assert _figures(rebuilt) == _figures(before)
        assert _counter_rows() == rows


def test_split_period_whole_months():
    from app.statistics.aggregates import split_period

    whole, ranges = split_period(date(2025, 12, 6), date(2026, 12, 5), cuts=[date(2026, 11, 28)])
    assert whole == [date(2026, month, 1) for month in range(1, 11)]
    assert ranges == [(date(2025, 12, 6), date(2025, 12, 31)), (date(2026, 11, 1), date(2026, 12, 5))]
    whole, ranges = split_period(date(2026, 1, 1), date(2026, 3, 31), cuts=[date(2026, 2, 1)])
    assert whole == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert split_period(date(2026, 1, 1), date(2026, 3, 31), months=False) == ([], [(date(2026, 1, 1), date(2026, 3, 31))])


def test_configuration_change_invalidates_counters(app, dataset):
    """Counters built with other open statuses, assigning actions or calendars are not used, and the next write drops them."""
    from sqlalchemy import update

    from app.actions.operations import ActionInput, perform_action
    from app.extensions import db
    from app.statistics.counters import read_state
    from app.statistics.models import StatisticsState

    with app.app_context():
        today = today_in_paris()
        state = read_state(db.session.connection())
        assert state
        db.session.execute(update(StatisticsState).values(fingerprint={**state, "open_statuses": ["new"]}))
        db.session.commit()
        stale, live = _both_paths("admin", today - timedelta(days=364), today)
        assert not stale.extras["counters"]
        assert _figures(stale) == _figures(live)

        open_row = next(row for row in dataset if row.open and row.department == "DMI-SSE-BPT" and not row.confidential)
        perform_action(user_context("admin"), open_row.id, "assign", ActionInput(assignee_id=user_context("sejour").user_id))
        assert read_state(db.session.connection()) is None


def test_on_time_share_names_its_base(app, dataset, client_as):
    page = html.unescape(client_as("admin").get("/statistics/").get_data(as_text=True))

    assert re.search(r"Part traitée dans le délai, sur les \d+ courriers traités qui en avaient un \(%\)", page)


@pytest.mark.parametrize(("language", "title"), [("fr", "<title>Courrier : 3</title>"), ("en", "<title>Courrier: 3</title>")])
def test_chart_bar_titles_punctuated_as_the_language(app_context, language, title):
    from flask_babel import force_locale

    from app.statistics.charts import Bar, horizontal_bars

    with app_context.test_request_context(), force_locale(language):
        svg = str(horizontal_bars("chart-x", "Titre", "Description", [Bar("Courrier", 3, "/statistics/mail")]))
    assert title in svg


@pytest.mark.parametrize(("argument", "message"), [
    ("department=²", "Service inconnu."), ("department=99999999999", "Service inconnu."),
    ("assignee=²", "Agent inconnu."), ("assignee=99999999999", "Agent inconnu."),
])
def test_odd_filter_ids_are_unknown(client_as, argument, message):
    response = client_as("chef.sejour").get(f"/statistics/?{argument}")

    assert response.status_code in (200, 400)
    assert message in response.get_data(as_text=True)

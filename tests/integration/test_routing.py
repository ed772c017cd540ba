"""Routing rules: the demo rule set on a table of sample mails, load-time checks, CLI and admin screen."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from flask_appbuilder.security.sqla.models import User
from flask_babel import force_locale
from sqlalchemy import delete, select

from app.configuration.loader import LoadFailed, load_directory
from app.configuration.operations import current_configuration
from app.core.errors import ValidationFailed
from app.correspondents.operations import CorrespondentInput
from app.distribution.models import COPY, OPINION, DistributionEntry
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from app.organisation.models import Department, UserDepartment
from app.routing.samples import parse_samples, summarise
from tests.conftest import REPO, csrf_token, user_context

SAMPLES_FILE = Path(__file__).with_name("routing_samples.yaml")
SAMPLES = parse_samples(SAMPLES_FILE.read_text(encoding="utf-8"))
# Values that the mail types require at registration, added to the samples' own fields.
REQUIRED_FIELDS = {
    "residence_permit_request": {"foreign_national_number": "0123456789", "permit_kind": "first_request"},
    "parliamentary_letter": {"elected_official": "Mme Claire Dubois", "chamber": "assemblee_nationale"},
    "grant_request": {"amount_requested": "1000"},
    "administrative_document_request": {"document_requested": "Arrêté du 3 mars"},
    "event_authorisation_request": {"event_date": "2026-12-31"},
}


def test_rule_set_and_table_sizes(app_context):
    configuration = current_configuration()
    assert sum(len(rule_set.rules) for rule_set in configuration.routing.values()) >= 20
    assert len(SAMPLES) >= 30


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.name for sample in SAMPLES])
def test_sample_routed_as_expected(app_context, sample):
    summary = summarise(current_configuration(), sample.mail)
    expect = sample.expect
    assert summary.department == expect["department"]
    if "assignee" in expect:
        assert summary.assignee == expect["assignee"]
    if "copies" in expect:
        assert sorted(summary.copy_users) == sorted(expect["copies"]["users"])
        assert sorted(summary.copy_departments) == sorted(expect["copies"]["departments"])
    if "priority" in expect:
        assert summary.priority == expect["priority"]
    assert summary.rules == expect["rules"]


def _registration(sample) -> Registration:
    sender = CorrespondentInput(
        kind=sample.mail.sender_kind or "person",
        last_name=None if sample.mail.sender_kind == "organisation" else "Martin",
        first_name=None if sample.mail.sender_kind == "organisation" else "Léa",
        organisation=sample.mail.sender_organisation,
        email=sample.mail.sender_email,
        confirm_new=True,
    )
    return Registration(
        mail_type=sample.mail.mail_type,
        subject=sample.mail.subject,
        channel=sample.mail.channel,
        priority=sample.mail.priority,
        arrival_date=today_in_paris() - timedelta(days=1),
        fields={**REQUIRED_FIELDS.get(sample.mail.mail_type, {}), **sample.mail.fields},
        correspondent=sender,
    )


REGISTRABLE = [sample for sample in SAMPLES if sample.expect["department"] is not None]


@pytest.mark.parametrize("sample", REGISTRABLE, ids=[sample.name for sample in REGISTRABLE])
def test_registration_applies_routing(app_context, sample):
    mail = register_mail(user_context("courrier"), _registration(sample))
    expect = sample.expect

    assert mail.handling_department.code == expect["department"]
    if "assignee" in expect:
        assert (mail.assignee.username if mail.assignee else None) == expect["assignee"]
    copies = db.session.execute(
        select(DistributionEntry).where(DistributionEntry.mail_id == mail.id, DistributionEntry.role == COPY)
    ).scalars().all()
    if "copies" in expect:
        assert sorted(entry.user.username for entry in copies if entry.user) == sorted(expect["copies"]["users"])
        assert sorted(entry.department.code for entry in copies if entry.department) == sorted(
            expect["copies"]["departments"]
        )
    if "priority" in expect:
        assert mail.priority == expect["priority"]
    trace = mail.history[0].details["routing"]
    assert [fired["rule"] for fired in trace["fired"]] == expect["rules"]


def test_trace_records_matched_values(app_context):
    sample = next(item for item in SAMPLES if item.name == "large grant")
    mail = register_mail(user_context("courrier"), _registration(sample))
    fired = mail.history[0].details["routing"]["fired"][0]
    assert fired["rule"] == "large_grant"
    assert {"condition": "fields.amount_requested", "expected": {"range": {"min": "100000", "max": None}},
            "value": "250000.00", "passed": True} in fired["checks"]


def test_model_opinion_request_at_registration(app_context):
    sample = next(item for item in SAMPLES if item.name == "large event")
    mail = register_mail(user_context("courrier"), _registration(sample))
    opinions = db.session.execute(
        select(DistributionEntry).where(DistributionEntry.mail_id == mail.id, DistributionEntry.role == OPINION)
    ).scalars().all()
    assert [entry.department.code for entry in opinions] == ["CAB-SIDPC"]
    assert opinions[0].due_date is not None


@pytest.mark.parametrize("typed", ["150 000,00 €", "150000", "150 000 EUR"])
def test_rules_compare_an_amount_as_stored(app_context, typed):
    mail = register_mail(user_context("courrier"), Registration(
        mail_type="grant_request", subject="Rénovation de la salle polyvalente", fields={"amount_requested": typed},
        correspondent=CorrespondentInput(kind="organisation", organisation="Commune de Saint-Rémy-lès-Chevreuse"),
    ))
    fired = [item["rule"] for item in mail.history[0].details["routing"]["fired"]]
    assert "large_grant" in fired
    assert mail.priority == "urgent"


@pytest.mark.parametrize("typed", ["NaN", "nan", "sNaN", "-Infinity"])
def test_amount_not_a_number_is_field_error(app_context, typed):
    registration = Registration(
        mail_type="grant_request", subject="Rénovation de la salle polyvalente", fields={"amount_requested": typed},
        correspondent=CorrespondentInput(kind="organisation", organisation="Commune de Saint-Rémy-lès-Chevreuse"),
    )
    with pytest.raises(ValidationFailed) as failure:
        register_mail(user_context("courrier"), registration)
    assert list(failure.value.field_errors) == ["field_amount_requested"]


def test_form_department_overrides_rules(app_context):
    sample = next(item for item in SAMPLES if item.name == "residence permit renewal")
    registration = _registration(sample)
    registration.handling_department = "DMI-SSE-BPT"
    mail = register_mail(user_context("courrier"), registration)
    assert mail.handling_department.code == "DMI-SSE-BPT"
    assert mail.assignee.username == "sejour"
    notes = mail.history[0].details["routing"]["notes"]
    assert notes == [{"code": "department_chosen", "chosen": "DMI-SSE-BPT", "routed": "DMI-SSE-BRT"}]


@pytest.fixture
def renewal_agent(app_context):
    """The routed assignee of renewals, restored after the test changes their account."""
    user = db.session.execute(select(User).where(User.username == "renouvellement")).scalar_one()
    memberships = db.session.execute(
        select(UserDepartment.department_id, UserDepartment.is_primary, UserDepartment.is_head)
        .where(UserDepartment.user_id == user.id)
    ).all()
    yield user
    user = db.session.execute(select(User).where(User.username == "renouvellement")).scalar_one()
    user.active = True
    db.session.execute(delete(UserDepartment).where(UserDepartment.user_id == user.id))
    db.session.add_all(
        UserDepartment(user_id=user.id, department_id=department_id, is_primary=is_primary, is_head=is_head)
        for department_id, is_primary, is_head in memberships
    )
    db.session.commit()


def _register_renewal():
    sample = next(item for item in SAMPLES if item.name == "residence permit renewal")
    return register_mail(user_context("courrier"), _registration(sample))


def test_inactive_routed_assignee_left_empty(renewal_agent):
    renewal_agent.active = False
    db.session.commit()

    mail = _register_renewal()

    assert mail.handling_department.code == "DMI-SSE-BRT"
    assert mail.assignee_id is None
    assert mail.history[0].details["routing"]["notes"] == [{"code": "assignee_unknown", "user": "renouvellement"}]


def test_routed_assignee_outside_department_left_empty(renewal_agent):
    other = db.session.execute(select(Department).where(Department.code == "DCPPAT-BSUB")).scalar_one()
    db.session.execute(delete(UserDepartment).where(UserDepartment.user_id == renewal_agent.id))
    db.session.add(UserDepartment(user_id=renewal_agent.id, department_id=other.id, is_primary=True))
    db.session.commit()

    mail = _register_renewal()

    assert mail.handling_department.code == "DMI-SSE-BRT"
    assert mail.assignee_id is None
    assert mail.history[0].details["routing"]["notes"] == [
        {"code": "assignee_outside", "user": "renouvellement", "department": "DMI-SSE-BRT"}
    ]


def test_routed_mail_history_shows_rule(client_as, app):
    with app.app_context():
        sample = next(item for item in SAMPLES if item.name == "naturalisation")
        mail_id = register_mail(user_context("courrier"), _registration(sample)).id
    html = client_as("naturalisation").get(f"/mail/{mail_id}").get_data(as_text=True)
    assert 'data-rule="naturalisation"' in html
    assert "Règle Demande de naturalisation (Service traitant)" in html
    assert "Type de courrier = Demande de naturalisation" in html
    assert "mail_types =" not in html


def test_field_condition_shown_by_label(client_as, app):
    with app.app_context():
        mail_id = register_mail(user_context("courrier"), Registration(
            mail_type="grant_request", subject="Demande de subvention d'équipement",
            fields={"amount_requested": "150 000,00"},
            correspondent=CorrespondentInput(kind="organisation", organisation="Association Les Amis de Saint-Éloi"),
        )).id
    html = client_as("admin").get(f"/mail/{mail_id}").get_data(as_text=True).replace("\u202f", " ")

    assert "Montant demandé = 150 000,00" in html
    assert "fields.amount_requested =" not in html


def test_odd_stored_trace_still_shown(client_as, app):
    with app.app_context():
        sample = next(item for item in SAMPLES if item.name == "naturalisation")
        mail = register_mail(user_context("courrier"), _registration(sample))
        entry = mail.history[0]
        entry.details = {**entry.details, "routing": {
            "fired": [
                {"rule": "complaint_residence", "rule_set": "handling",
                 "checks": [{"condition": "subject_words", "value": ["séjour", "titre de séjour"]}]},
                {"rule": ["a"], "rule_set": ["b"], "checks": [{"value": 3}, {"condition": None, "value": None},
                                                            {"condition": "fields.amount_requested", "value": "1e999999999"}]},
            ],
            "notes": [42, "<b>note</b>", {"code": "assignee_outside", "user": "x"}, {"code": "<i>unknown</i>"}],
        }}
        db.session.commit()
        mail_id = mail.id
    response = client_as("admin").get(f"/mail/{mail_id}")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "Mots de l&#39;objet = séjour, titre de séjour" in page
    assert "&lt;b&gt;note&lt;/b&gt;" in page
    assert "&lt;i&gt;unknown&lt;/i&gt;" in page


def test_routing_note_shown_in_french(client_as, app):
    with app.app_context():
        sample = next(item for item in SAMPLES if item.name == "naturalisation")
        registration = dataclasses.replace(_registration(sample), handling_department="DMI-SSE-BPT")
        mail_id = register_mail(user_context("courrier"), registration).id
    html = client_as("admin").get(f"/mail/{mail_id}").get_data(as_text=True)

    assert "Le service DMI-SSE-BPT a été choisi dans le formulaire au lieu de DMI-SN" in html
    assert "chosen on the form" not in html


def test_migration_rewrites_stored_sentences_as_codes(app_context):
    from flask_migrate import downgrade, upgrade

    from tests.conftest import REPO

    entry = _register_renewal().history[0]
    sentences = [
        "department DMI-SSE-BPT chosen on the form instead of DMI-SSE-BRT",
        "assignee chosen on the form",
        "assignee renouvellement unknown or inactive: left empty",
        "assignee renouvellement is not in DMI-SSE-BRT: left empty",
        "copy to dupont skipped: unknown or inactive user",
        "a note of another form",
    ]
    entry.details = {**entry.details, "routing": {**entry.details["routing"], "notes": sentences}}
    db.session.commit()
    entry_id = entry.id
    db.session.remove()

    downgrade(directory=str(REPO / "migrations"), revision="0015")
    upgrade(directory=str(REPO / "migrations"))

    notes = db.session.get(HistoryEntry, entry_id).details["routing"]["notes"]
    assert notes == [
        {"code": "department_chosen", "chosen": "DMI-SSE-BPT", "routed": "DMI-SSE-BRT"},
        {"code": "assignee_chosen"},
        {"code": "assignee_unknown", "user": "renouvellement"},
        {"code": "assignee_outside", "user": "renouvellement", "department": "DMI-SSE-BRT"},
        {"code": "copy_user_unknown", "user": "dupont"},
        "a note of another form",
    ]


# --- Load-time checks -------------------------------------------------------------


@pytest.fixture()
def schemas_copy(tmp_path):
    target = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", target)
    return target


def _errors(directory: Path) -> list:
    with pytest.raises(LoadFailed) as failure:
        load_directory(directory)
    return failure.value.errors


CONFLICTING_SET = """
  - id: extra
    order: 30
    mode: all_matches
    labels: {fr: "Essai", en: "Trial"}
    rules:
      - id: renewals_elsewhere
        when: {mail_types: [residence_permit_request], subject_words: [renouvellement]}
        then: {department: DMI-SSE}
"""


def test_conflict_reported_with_file_line(app_context, schemas_copy):
    path = schemas_copy / "routing.yaml"
    path.write_text(path.read_text(encoding="utf-8") + CONFLICTING_SET, encoding="utf-8")
    errors = _errors(schemas_copy)
    assert {error.code for error in errors} == {"routing_conflict"}
    assert {error.params["other"] for error in errors} == {
        "health_agency", "residence_renewal", "residence_first",
    }
    assert all(error.file == "routing.yaml" and error.key == "routing[2].rules[0].id" for error in errors)
    assert all(error.line == errors[0].line > 100 for error in errors)


def test_exclusive_conditions_are_no_conflict(app_context, schemas_copy):
    path = schemas_copy / "routing.yaml"
    exclusive = """
  - id: extra
    order: 30
    mode: all_matches
    labels: {fr: "Essai", en: "Trial"}
    rules:
      - id: memo_internal
        when: {mail_types: [internal_memo], channels: [internal]}
        then: {department: SG}
      - id: memo_by_hand
        when: {mail_types: [internal_memo], channels: [hand]}
        then: {department: DCL}
"""
    path.write_text(path.read_text(encoding="utf-8") + exclusive, encoding="utf-8")
    configuration = load_directory(schemas_copy)
    assert len(configuration.routing["extra"].rules) == 2


def test_shadowed_rule_reported(app_context, schemas_copy):
    path = schemas_copy / "routing.yaml"
    text = path.read_text(encoding="utf-8")
    shadowed = """      - id: naturalisation_by_email
        when: {mail_types: [naturalisation_request], channels: [email]}
        then: {department: DMI}
      - id: note_to_prefect"""
    path.write_text(text.replace("      - id: note_to_prefect", shadowed, 1), encoding="utf-8")
    errors = _errors(schemas_copy)
    assert [error.code for error in errors] == ["routing_shadowed"]
    assert errors[0].params == {"rule": "naturalisation_by_email", "other": "naturalisation"}


def test_unknown_field_and_department_reported(app_context, schemas_copy):
    path = schemas_copy / "routing.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("fields: [{field: permit_kind, equals: renewal}]", "fields: [{field: permit_knd, equals: renewal}]")
    text = text.replace("then: {department: DCL-BE}", "then: {department: DCL-XX}")
    path.write_text(text, encoding="utf-8")
    errors = _errors(schemas_copy)
    assert sorted(error.code for error in errors) == ["unknown_department", "unknown_field"]
    assert all(error.file == "routing.yaml" and error.line > 1 for error in errors)


@pytest.mark.parametrize(("condition", "code", "french"), [
    ("{field: permit_kind, equals: renewl}", "not_a_choice",
     "le champ « permit_kind » ne prend jamais la valeur « renewl » : ses choix sont"),
    ("{field: permit_kind, range: {min: 10}}", "range_on_choice",
     "le champ « permit_kind » est un choix : comparez-le avec equals ou in, pas avec range"),
])
def test_condition_no_choice_can_meet_reported(app_context, schemas_copy, condition, code, french):
    path = schemas_copy / "routing.yaml"
    text = path.read_text(encoding="utf-8").replace("{field: permit_kind, equals: renewal}", condition)
    path.write_text(text, encoding="utf-8")

    errors = _errors(schemas_copy)

    assert [error.code for error in errors] == [code]
    assert errors[0].file == "routing.yaml"
    assert errors[0].line == next(number for number, line in enumerate(text.splitlines(), 1) if condition in line)
    with force_locale("fr"):
        assert french in errors[0].message()


def test_field_condition_needs_one_test(app_context, schemas_copy):
    path = schemas_copy / "routing.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "{field: permit_kind, equals: renewal}", "{field: permit_kind, equals: renewal, in: [renewal]}"
    )
    path.write_text(text, encoding="utf-8")
    errors = _errors(schemas_copy)
    assert [error.code for error in errors] == ["value_error"]


# --- CLI and administration screen ------------------------------------------------


def test_cli_passes_on_sample_table(app):
    result = app.test_cli_runner().invoke(args=["routing", "test", str(SAMPLES_FILE)])
    assert result.exit_code == 0, result.output
    assert f"{len(SAMPLES)} sample(s), 0 mismatch(es)." in result.output


def test_cli_reports_mismatch(app, tmp_path):
    samples = tmp_path / "samples.yaml"
    samples.write_text(
        "samples:\n  - name: wrong\n    mail_type: naturalisation_request\n    expect: {department: SG}\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["routing", "test", str(samples)])
    assert result.exit_code == 1
    assert "department: expected SG, got DMI-SN" in result.output
    assert "[fired] handling/naturalisation" in result.output


def test_admin_screen_shows_trace(client_as, app):
    client = client_as("admin")
    page = client.get("/admin/routing/try")
    assert page.status_code == 200
    response = client.post(
        "/admin/routing/try",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), "mail_type": "grant_request",
              "subject": "Rénovation", "fields": "amount_requested = 250 000\namount: 12\n= x\nunknown_field = 3"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<tr data-rule="large_grant" class="success">' in html
    ignored = html.split('id="routing-ignored-fields"', 1)[1].split("</div>", 1)[0]
    assert [line for line in ("amount: 12", "= x", "unknown_field = 3") if f"<code>{line}</code>" in ignored] == [
        "amount: 12", "= x", "unknown_field = 3"]
    assert "amount_requested" not in ignored
    assert '<option value="post">post</option>' not in page.get_data(as_text=True)
    large_grant = html.split('<tr data-rule="large_grant"', 1)[1].split("</tr>", 1)[0].replace("\u202f", " ")
    assert "Montant demandé : 250 000,00 ✓" in large_grant
    assert "(attendu : ≥ 100 000,00)" in large_grant
    assert "{&#39;" not in html
    assert "[&#39;" not in html
    assert "DCPPAT-BSUB" in html.split('data-field="department"', 1)[1].split("</tr>", 1)[0]
    with app.app_context():
        assert db.session.execute(select(Mail.id)).first() is None


@pytest.mark.parametrize("username", ["sejour", "courrier", "chef.sejour"])
def test_admin_screen_forbidden_to_others(client_as, username):
    assert client_as(username).get("/admin/routing/try").status_code == 403

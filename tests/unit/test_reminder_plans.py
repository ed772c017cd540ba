"""Reminder plans: placing steps in working days, and validating their declaration."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from app.configuration.loader import LoadFailed, SourceFile, load_configuration, read_sources
from app.configuration.specs import ReminderPlanSpec
from app.deadlines.calendar import get_calendar
from app.reminders.operations import plan_reminders

REPO = Path(__file__).resolve().parents[2]
METROPOLE = get_calendar("metropole")
ALSACE = get_calendar("alsace_moselle")


def plan(*steps: dict) -> ReminderPlanSpec:
    return ReminderPlanSpec.model_validate({"id": "test", "labels": {"fr": "Test", "en": "Test"}, "steps": list(steps)})


def days(due: date, steps: list[dict], calendar=METROPOLE) -> list[date]:
    return [item.remind_on for item in plan_reminders(due, plan(*steps), calendar)]


def test_before_counts_working_days_back():
    # Due Friday 13 November 2026; 11 November is a holiday.
    assert days(date(2026, 11, 13), [{"when": "before", "working_days": 3, "recipients": ["assignee"]}])[0] == date(2026, 11, 9)


def test_after_skips_weekend_and_holiday():
    # Due Tuesday 10 November 2026: 1 working day after is Thursday 12.
    assert days(date(2026, 11, 10), [{"when": "after", "working_days": 1, "recipients": ["assignee"]}])[0] == date(2026, 11, 12)


def test_on_due_date_that_is_a_working_day():
    assert days(date(2026, 7, 15), [{"when": "on", "recipients": ["assignee"]}])[0] == date(2026, 7, 15)


def test_on_due_date_falling_on_holiday_moves_earlier():
    # Calendar-day delays may end on a holiday: Tuesday 14 July 2026 gives Monday 13.
    assert days(date(2026, 7, 14), [{"when": "on", "recipients": ["assignee"]}])[0] == date(2026, 7, 13)


def test_on_due_date_falling_on_sunday_moves_to_friday():
    assert days(date(2027, 1, 3), [{"when": "on", "recipients": ["assignee"]}])[0] == date(2026, 12, 31)


def test_late_notice_first_working_day_after_due():
    planned = plan_reminders(date(2026, 12, 24), None, METROPOLE)

    assert [(item.kind, item.remind_on) for item in planned] == [("late", date(2026, 12, 28))]


def test_late_notice_uses_department_calendar():
    # 26 December is a holiday in Alsace-Moselle only.
    assert plan_reminders(date(2026, 12, 24), None, ALSACE)[0].remind_on == date(2026, 12, 28)
    assert plan_reminders(date(2027, 12, 24), None, METROPOLE)[0].remind_on == date(2027, 12, 27)
    assert plan_reminders(date(2027, 12, 24), None, ALSACE)[0].remind_on == date(2027, 12, 27)
    assert plan_reminders(date(2025, 12, 25), None, ALSACE)[0].remind_on == date(2025, 12, 29)
    assert plan_reminders(date(2025, 12, 25), None, METROPOLE)[0].remind_on == date(2025, 12, 26)


def test_before_crossing_easter_monday():
    # Due Wednesday 31 March 2027; Easter Monday is 29 March 2027.
    assert days(date(2027, 3, 31), [{"when": "before", "working_days": 2, "recipients": ["assignee"]}])[0] == date(2027, 3, 26)


def test_steps_keep_plan_order_and_roles():
    planned = plan_reminders(
        date(2026, 11, 13),
        plan(
            {"when": "before", "working_days": 1, "recipients": ["assignee"]},
            {"when": "after", "working_days": 2, "recipients": ["department_head", "director"]},
        ),
        METROPOLE,
    )

    assert [(item.kind, item.step_index, item.recipient_roles) for item in planned] == [
        ("step", 0, ("assignee",)),
        ("step", 1, ("department_head", "director")),
        ("late", None, ("assignee",)),
    ]


def test_yaml_on_read_as_boolean_is_accepted():
    # An unquoted `on` is the boolean true in YAML 1.1.
    assert plan({"when": True, "recipients": ["assignee"]}).steps[0].when == "on"


# --- Declarations ---------------------------------------------------------------------------


def schemas_with(extra_name: str, extra_text: str) -> list[SourceFile]:
    sources = [source for source in read_sources(REPO / "schemas") if source.name != extra_name]
    return sources + [SourceFile(extra_name, extra_text)]


def errors_of(sources: list[SourceFile]) -> list[tuple[str, int, str, str]]:
    with pytest.raises(LoadFailed) as failure:
        load_configuration(sources)
    return [(error.file, error.line, error.key, error.code) for error in failure.value.errors]


def test_repository_schemas_declare_plans():
    configuration = load_configuration(read_sources(REPO / "schemas"))

    assert configuration.mail_types["residence_permit_request"].reminder_plan == "public_request"
    assert configuration.mail_types["administrative_document_request"].implicit_decision_delay.months == 1
    assert configuration.mail_types["grant_request"].implicit_decision_delay.months == 2


def test_step_offset_error_names_line():
    text = (
        "reminder_plans:\n"
        "  - id: standard\n"
        "    labels: {fr: A, en: A}\n"
        "    steps:\n"
        "      - {when: on, recipients: [assignee]}\n"
        "      - {when: before, recipients: [assignee]}\n"
        "  - id: public_request\n"
        "    labels: {fr: B, en: B}\n"
        "    steps: [{when: on, recipients: [assignee]}]\n"
    )

    assert errors_of(schemas_with("reminder_plans.yaml", text)) == [
        ("reminder_plans.yaml", 6, "reminder_plans[0].steps[1].working_days", "reminder_offset")
    ]


def test_unknown_recipient_role_rejected():
    text = (
        "reminder_plans:\n"
        "  - id: standard\n"
        "    labels: {fr: A, en: A}\n"
        "    steps:\n"
        "      - {when: before, working_days: 2, recipients: [prefect]}\n"
        "  - id: public_request\n"
        "    labels: {fr: B, en: B}\n"
        "    steps: [{when: on, recipients: [assignee]}]\n"
    )

    errors = errors_of(schemas_with("reminder_plans.yaml", text))
    # The invalid plan is not loaded, so the mail types that use it are reported too.
    assert [(line, code) for file, line, _key, code in errors if file == "reminder_plans.yaml"] == [(5, "literal_error")]


def test_unknown_plan_reference_rejected():
    sources = [
        SourceFile(source.name, source.text.replace("reminder_plan: standard", "reminder_plan: missing_plan", 1))
        for source in read_sources(REPO / "schemas")
    ]

    errors = errors_of(sources)
    assert [(file, key, code) for file, _line, key, code in errors] == [
        ("mail_types/incoming.yaml", "mail_types[2].reminder_plan", "unknown_reminder_plan")
    ]


def test_legal_delay_needs_regime():
    sources = [
        SourceFile(source.name, source.text.replace("    reminder_plan: standard\n", "    legal_delay: {months: 3}\n", 1))
        for source in read_sources(REPO / "schemas")
    ]

    errors = errors_of(sources)
    assert [code for _file, _line, _key, code in errors] == ["legal_delay_without_regime"]


def test_legal_delay_months_or_days_not_both():
    sources = [
        SourceFile(source.name, source.text.replace("legal_delay: {months: 1}", "legal_delay: {months: 1, days: 30}", 1))
        for source in read_sources(REPO / "schemas")
    ]

    errors = errors_of(sources)
    assert [(key, code) for _file, _line, key, code in errors] == [("mail_types[5].legal_delay", "value_error")]

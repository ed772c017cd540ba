"""Evaluate the routing rules on one mail and explain the result.

``route`` needs no database: it reads the declared rule sets and a
``SampleMail`` and returns the outcome with a trace of every rule looked at,
each with the values it compared.  Registration, ``flask routing test`` and
the administration screen all call it, so they cannot disagree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.configuration.loader import Configuration
from app.configuration.specs import FieldConditionSpec, RoutingConditionSpec, RoutingRuleSetSpec, RoutingRuleSpec
from app.core.parsing import fold_for_match

PRIORITY_RANK = {"normal": 0, "urgent": 1, "very_urgent": 2}


@dataclass(frozen=True)
class SampleMail:
    """What routing looks at: the registration's values and its sender."""

    mail_type: str
    subject: str = ""
    channel: str = "post"
    priority: str = "normal"
    sender_kind: str | None = None
    sender_organisation: str | None = None
    sender_email: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def sender_email_domain(self) -> str | None:
        if not self.sender_email or "@" not in self.sender_email:
            return None
        return self.sender_email.rsplit("@", 1)[1].strip().lower()


@dataclass
class Check:
    """One condition of a rule: what it expected, the mail's value, and whether it held."""

    condition: str
    expected: Any
    value: Any
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition, "expected": self.expected, "value": _plain(self.value), "passed": self.passed,
        }


@dataclass
class RuleResult:
    rule_set: str
    rule: str
    matched: bool
    checks: list[Check]
    # Outcomes the rule set, e.g. {"department": "DMI-SN"}; empty when it did not match.
    applied: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_set": self.rule_set,
            "rule": self.rule,
            "matched": self.matched,
            "checks": [check.as_dict() for check in self.checks],
            "applied": self.applied,
        }


@dataclass
class RoutingOutcome:
    """The routed distribution: codes and usernames, resolved to rows by the caller."""

    department: str | None = None
    assignee: str | None = None
    copy_users: list[str] = field(default_factory=list)
    copy_departments: list[str] = field(default_factory=list)
    priority: str | None = None
    distribution_list: str | None = None
    results: list[RuleResult] = field(default_factory=list)

    @property
    def fired(self) -> list[RuleResult]:
        return [result for result in self.results if result.matched]

    def trace(self) -> dict[str, Any]:
        """Return the fired rules with the values they matched on, as stored in the mail's history."""
        return {
            "fired": [result.as_dict() for result in self.fired],
            "department": self.department,
            "assignee": self.assignee,
            "copies": {"users": self.copy_users, "departments": self.copy_departments},
            "priority": self.priority,
            "distribution_list": self.distribution_list,
        }


# --- Conditions -------------------------------------------------------------------


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).replace("\u202f", "").replace("\u00a0", "").replace(" ", "").replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    # "NaN" typed in a number field is no number: comparing it to a range bound raises InvalidOperation.
    return number if number.is_finite() else None


def _same_value(value: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return str(value).lower() == str(expected).lower()
    value_number, expected_number = _as_number(value), _as_number(expected)
    if value_number is not None and expected_number is not None:
        return value_number == expected_number
    return str(value) == str(expected)


def _check_field(condition: FieldConditionSpec, fields: dict[str, Any]) -> Check:
    value = fields.get(condition.field)
    name = f"fields.{condition.field}"
    if value is None or value == "":
        expected = condition.model_dump(by_alias=True, exclude_none=True, mode="json")
        expected.pop("field", None)
        return Check(name, expected, None, False)
    if condition.equals is not None:
        return Check(name, {"equals": _plain(condition.equals)}, value, _same_value(value, condition.equals))
    if condition.in_ is not None:
        passed = any(_same_value(value, item) for item in condition.in_)
        return Check(name, {"in": [_plain(item) for item in condition.in_]}, value, passed)
    if condition.range is not None:
        number = _as_number(value)
        low, high = condition.range.min, condition.range.max
        passed = number is not None and (low is None or number >= low) and (high is None or number <= high)
        return Check(name, {"range": {"min": _plain(low), "max": _plain(high)}}, value, passed)
    assert condition.pattern is not None
    return Check(name, {"pattern": condition.pattern}, value, re.search(condition.pattern, str(value)) is not None)


def _plain(value: Any) -> Any:
    """Return ``value`` in a form JSON stores unchanged (decimals as text, dates in ISO form)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


@functools.lru_cache(maxsize=4096)
def _padded_fold(text: str) -> str:
    # Every rule reads the same subject and declared phrases, so each text is folded once per process.
    return f" {fold_for_match(text)} "


def _contains_phrase(text: str | None, phrases: list[str]) -> tuple[bool, list[str]]:
    folded = _padded_fold(text or "")
    found = [phrase for phrase in phrases if _padded_fold(phrase) in folded]
    return bool(found), found


def _list_check(name: str, expected: list[str], value: Any) -> Check:
    return Check(name, list(expected), value, value in expected)


def evaluate_conditions(
    condition: RoutingConditionSpec, mail: SampleMail, configuration: Configuration
) -> list[Check]:
    """Return one check per condition the rule declares, in declaration order."""
    checks: list[Check] = []
    if condition.mail_types:
        checks.append(_list_check("mail_types", condition.mail_types, mail.mail_type))
    if condition.categories:
        spec = configuration.mail_types.get(mail.mail_type)
        checks.append(_list_check("categories", condition.categories, spec.category if spec else None))
    if condition.channels:
        checks.append(_list_check("channels", condition.channels, mail.channel))
    if condition.priorities:
        checks.append(_list_check("priorities", condition.priorities, mail.priority))
    if condition.sender_kinds:
        checks.append(_list_check("sender_kinds", condition.sender_kinds, mail.sender_kind))
    if condition.sender_email_domains:
        domains = [domain.lower() for domain in condition.sender_email_domains]
        checks.append(_list_check("sender_email_domains", domains, mail.sender_email_domain))
    if condition.sender_organisations:
        passed, found = _contains_phrase(mail.sender_organisation, condition.sender_organisations)
        checks.append(Check("sender_organisations", condition.sender_organisations, found or mail.sender_organisation, passed))
    if condition.subject_words:
        passed, found = _contains_phrase(mail.subject, condition.subject_words)
        checks.append(Check("subject_words", condition.subject_words, found or None, passed))
    for field_condition in condition.fields:
        checks.append(_check_field(field_condition, mail.fields))
    return checks


# --- Rule sets --------------------------------------------------------------------


def _apply(rule: RoutingRuleSpec, outcome: RoutingOutcome) -> dict[str, Any]:
    """Merge the rule's outcome into ``outcome`` and return what it set.

    A department, assignee or list already set by an earlier rule set is kept:
    the load-time conflict check guarantees a later rule can only repeat it.
    """
    then = rule.then
    applied: dict[str, Any] = {}
    for name in ("department", "assignee", "distribution_list"):
        value = getattr(then, name)
        if value is not None and getattr(outcome, name) is None:
            setattr(outcome, name, value)
            applied[name] = value
    if then.priority is not None:
        current = outcome.priority or "normal"
        if PRIORITY_RANK[then.priority] > PRIORITY_RANK[current] or outcome.priority is None:
            outcome.priority = then.priority
        applied["priority"] = then.priority
    for username in then.copies.users:
        if username not in outcome.copy_users:
            outcome.copy_users.append(username)
    for code in then.copies.departments:
        if code not in outcome.copy_departments:
            outcome.copy_departments.append(code)
    if then.copies.users or then.copies.departments:
        applied["copies"] = {"users": list(then.copies.users), "departments": list(then.copies.departments)}
    return applied


def _run_rule_set(rule_set: RoutingRuleSetSpec, mail: SampleMail, configuration: Configuration,
                  outcome: RoutingOutcome) -> None:
    for rule in rule_set.rules:
        checks = evaluate_conditions(rule.when, mail, configuration)
        matched = all(check.passed for check in checks)
        result = RuleResult(rule_set.id, rule.id, matched, checks)
        outcome.results.append(result)
        if not matched:
            continue
        result.applied = _apply(rule, outcome)
        if rule_set.mode == "first_match":
            return


def route(configuration: Configuration, mail: SampleMail) -> RoutingOutcome:
    """Evaluate every rule set in order on ``mail`` and return the outcome with its trace."""
    outcome = RoutingOutcome()
    for rule_set in sorted(configuration.routing.values(), key=lambda item: (item.order, item.id)):
        _run_rule_set(rule_set, mail, configuration, outcome)
    return outcome

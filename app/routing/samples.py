"""Sample mails for trying routing rules without registering anything.

A samples file is YAML::

    samples:
      - name: renewal by post
        mail_type: residence_permit_request
        subject: Renouvellement de titre de séjour
        channel: post              # optional, default post
        priority: normal           # optional
        sender: {kind: organisation, organisation: Mairie de Vanves, email: maire@vanves.fr}
        fields: {permit_kind: renewal}
        expect:                    # optional: what the rules must decide
          department: DMI-SSE-BRT
          assignee: renouvellement
          copies: {users: [], departments: []}
          priority: normal
          rules: [residence_renewal]

``summarise`` resolves an outcome the way registration does when the form
leaves department and assignee empty, using the distribution-list models for
"default" assignees, but without the database: it does not check that the
assignee still belongs to the department.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from app.configuration.loader import Configuration
from app.distribution.operations import department_model
from app.routing.engine import PRIORITY_RANK, RoutingOutcome, SampleMail, route


class SamplesInvalid(ValueError):
    """The samples file cannot be read; the message names the sample and the key."""


@dataclass
class Sample:
    name: str
    mail: SampleMail
    expect: dict[str, Any] | None = None


@dataclass
class Summary:
    """The decision for one sample, with usernames and department codes."""

    department: str | None
    assignee: str | None
    copy_users: list[str]
    copy_departments: list[str]
    priority: str
    rules: list[str]
    outcome: RoutingOutcome
    opinions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "department": self.department, "assignee": self.assignee,
            "copies": {"users": self.copy_users, "departments": self.copy_departments},
            "opinions": self.opinions, "priority": self.priority, "rules": self.rules,
        }


SAMPLE_KEYS = {"name", "mail_type", "subject", "channel", "priority", "sender", "fields", "expect"}


def parse_samples(text: str) -> list[Sample]:
    """Read a samples file; raise SamplesInvalid naming the first problem."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SamplesInvalid(f"invalid YAML: {exc}") from None
    entries = data.get("samples") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SamplesInvalid("the file must contain 'samples:', a list of sample mails")
    samples = []
    for position, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"sample {position + 1}" + (f" ({name})" if name else "")
        if not isinstance(entry, dict) or "mail_type" not in entry:
            raise SamplesInvalid(f"{label}: mail_type is missing")
        unknown = sorted(set(entry) - SAMPLE_KEYS)
        if unknown:
            raise SamplesInvalid(f"{label}: unknown key {unknown[0]}; expected {', '.join(sorted(SAMPLE_KEYS))}")
        sender = entry.get("sender") or {}
        samples.append(
            Sample(
                name=str(name or label),
                mail=SampleMail(
                    mail_type=str(entry["mail_type"]),
                    subject=str(entry.get("subject") or ""),
                    channel=str(entry.get("channel") or "post"),
                    priority=str(entry.get("priority") or "normal"),
                    sender_kind=sender.get("kind"),
                    sender_organisation=sender.get("organisation"),
                    sender_email=sender.get("email"),
                    fields=dict(entry.get("fields") or {}),
                ),
                expect=entry.get("expect"),
            )
        )
    return samples


def summarise(configuration: Configuration, mail: SampleMail) -> Summary:
    """Route ``mail`` and resolve department, assignee, copies and priority as registration would."""
    outcome = route(configuration, mail)
    spec = configuration.mail_types.get(mail.mail_type)
    department = outcome.department or (spec.default_department if spec else None)
    model = configuration.distribution_lists.get(outcome.distribution_list) if outcome.distribution_list else None
    model = model or department_model(configuration, department)
    assignee = outcome.assignee
    if assignee == "default" or assignee is None:
        assignee = model.assignee if model else None
    copy_users = [name for name in outcome.copy_users if name != assignee]
    copy_departments = [code for code in outcome.copy_departments if code != department]
    opinions = []
    if model is not None:
        copy_users += [name for name in model.copies.users if name != assignee and name not in copy_users]
        copy_departments += [
            code for code in model.copies.departments if code not in copy_departments and code != department
        ]
        opinions = [item.user or item.department or "" for item in model.opinions]
    priority = max(mail.priority, outcome.priority or "normal", key=lambda item: PRIORITY_RANK.get(item, 0))
    return Summary(
        department, assignee, copy_users, copy_departments, priority,
        [result.rule for result in outcome.fired], outcome, opinions,
    )


def mismatches(expect: dict[str, Any], summary: Summary) -> list[str]:
    """Return one line per expected value the summary does not meet."""
    problems = []
    for key in ("department", "assignee", "priority"):
        if key in expect and expect[key] != getattr(summary, key):
            problems.append(f"{key}: expected {expect[key]}, got {getattr(summary, key)}")
    copies = expect.get("copies")
    if copies is not None:
        if sorted(copies.get("users") or []) != sorted(summary.copy_users):
            problems.append(f"copies.users: expected {sorted(copies.get('users') or [])}, got {sorted(summary.copy_users)}")
        if sorted(copies.get("departments") or []) != sorted(summary.copy_departments):
            problems.append(
                f"copies.departments: expected {sorted(copies.get('departments') or [])}, "
                f"got {sorted(summary.copy_departments)}"
            )
    if "rules" in expect and list(expect["rules"]) != summary.rules:
        problems.append(f"rules: expected {list(expect['rules'])}, got {summary.rules}")
    return problems

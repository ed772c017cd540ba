"""Routing at registration: decide the distribution before the insert, apply it inside it.

``plan_routing`` runs before registration's checks, without writing: it
evaluates the rules and fills the department, assignee and priority that the
agent left empty.  A department or assignee typed on the form overrides the
rules, and the override is written in the trace.  ``apply_routing`` then runs
inside the registration transaction and adds the copies and opinion requests.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import aliased

from app.configuration.loader import Configuration
from app.correspondents.models import Correspondent
from app.distribution.operations import (
    DistributionTargets,
    add_copies,
    apply_model,
    department_ids_by_code,
    department_model,
    describe_target,
    target_names,
    user_ids_by_username,
)
from app.extensions import db
from app.mail.models import Mail
from app.organisation.models import Department, UserDepartment
from app.routing.engine import PRIORITY_RANK, RoutingOutcome, SampleMail, route

log = logging.getLogger(__name__)


@dataclass
class RoutingPlan:
    """The registration as routing completed it, and what to record and add once the mail exists."""

    registration: Any
    outcome: RoutingOutcome
    department: str | None
    assignee_id: int | None
    model_id: str | None
    # Where routing departed from the rules: a code of ROUTING_NOTES (app/portal/hooks.py) and its values.
    notes: list[dict[str, str]] = field(default_factory=list)
    # The active department of ``department`` as routing read it, and the assignee routing
    # found in its tree, so that registration's checks do not read them again.
    department_row: Department | None = None
    routed_assignee_id: int | None = None
    # The correspondent picked on the form, as the rules read it: held here so that the
    # session's identity map keeps it and registration does not read it again.
    picked_correspondent: Correspondent | None = None

    def note(self, code: str, **values: str) -> None:
        self.notes.append({"code": code, **values})

    def trace(self) -> dict[str, Any]:
        trace = self.outcome.trace()
        trace["result"] = {"department": self.department, "assignee_id": self.assignee_id, "model": self.model_id}
        trace["notes"] = self.notes
        return trace


def _picked_correspondent(registration: Any) -> Correspondent | None:
    data = registration.correspondent
    if data is None or data.id is None:
        return None
    return db.session.get(Correspondent, data.id)


def comparable_fields(spec: Any, fields: dict[str, Any], locale: str) -> dict[str, Any]:
    """Return ``fields`` as the register will store them where they are valid, so that the rules compare those.

    An amount typed "150 000,00 €" is compared as 150000.00, as it is stored.
    A value that the checks will reject is left as typed.
    NOTE: registration's checks clean the same fields again afterwards.
    """
    from app.mail.fields import clean_field_values

    if spec is None:
        return dict(fields)
    cleaned, errors = clean_field_values(spec, {key: value for key, value in fields.items() if spec.field(key)}, locale)
    return {key: value if key in errors or key not in cleaned else cleaned[key] for key, value in fields.items()}


def sample_from_registration(registration: Any, picked: Correspondent | None = None, spec: Any = None) -> SampleMail:
    """Build what the rules look at from a ``Registration`` and its correspondent.

    ``picked`` is the directory entry whose id the registration names, if any;
    ``spec``, the registration's mail type, whose fields are then compared as stored.
    """
    data = registration.correspondent
    kind = organisation = email = None
    if picked is not None:
        kind, organisation, email = picked.kind, picked.organisation, picked.email
    elif data is not None and data.id is None and not data.is_empty():
        kind, organisation, email = data.kind, data.organisation, data.email
    return SampleMail(
        mail_type=registration.mail_type,
        subject=registration.subject or "",
        channel=registration.channel,
        priority=registration.priority,
        sender_kind=kind,
        sender_organisation=organisation,
        sender_email=email,
        fields=comparable_fields(spec, registration.fields, getattr(registration, "locale", "fr")),
    )


@functools.cache
def _department_and_user() -> Select[Any]:
    """Return the query of the active department, the active user of that name and whether they belong to its tree.

    The query is built once, because building the aliased department costs more than running it.
    """
    tree = aliased(Department)
    member = (
        select(UserDepartment.id)
        .join(tree, tree.id == UserDepartment.department_id)
        .where(UserDepartment.user_id == User.id, tree.path.startswith(Department.path))
        .exists()
    )
    return (
        select(Department, User.id, member.label("is_member"))
        .outerjoin(User, and_(User.username == bindparam("username"), User.active.is_(True)))
        .where(Department.code == bindparam("code"), Department.active.is_(True))
    )


def _routed_assignee(plan: RoutingPlan, wanted: str | None, model: Any) -> int | None:
    """Resolve a routed username, or "default", to a user id that belongs to the handling department.

    Also keeps the handling department's row on ``plan`` for registration's checks.
    """
    if wanted == "default":
        wanted = model.assignee if model is not None else None
    if wanted is None or plan.department is None:
        return None
    found = db.session.execute(_department_and_user(), {"code": plan.department, "username": wanted}).first()
    if found is None:
        return None
    plan.department_row = found.Department
    if found.id is None:
        plan.note("assignee_unknown", user=wanted)
        log.warning("routing names assignee %s, who is unknown or inactive", wanted)
        return None
    if not found.is_member:
        plan.note("assignee_outside", user=wanted, department=plan.department)
        return None
    plan.routed_assignee_id = found.id
    return int(found.id)


def plan_routing(registration: Any, configuration: Configuration) -> RoutingPlan:
    """Evaluate the rules on ``registration`` and return it completed where the agent left it empty."""
    picked = _picked_correspondent(registration)
    spec = configuration.mail_types.get(registration.mail_type)
    outcome = route(configuration, sample_from_registration(registration, picked, spec))
    manual_department = registration.handling_department
    department_code = manual_department or outcome.department or (spec.default_department if spec else None)
    plan = RoutingPlan(registration, outcome, department_code, None, None, picked_correspondent=picked)
    if manual_department and outcome.department and manual_department != outcome.department:
        plan.note("department_chosen", chosen=manual_department, routed=outcome.department)

    # The rules' list and assignee apply only when the rules chose the department.
    rules_chose_department = department_code == outcome.department
    model = None
    if outcome.distribution_list and rules_chose_department:
        model = configuration.distribution_lists.get(outcome.distribution_list)
    model = model or department_model(configuration, department_code)
    plan.model_id = model.id if model else None

    if registration.assignee_id is not None:
        plan.assignee_id = registration.assignee_id
        if outcome.assignee:
            plan.note("assignee_chosen")
    else:
        rule_assignee = outcome.assignee if rules_chose_department else None
        wanted = rule_assignee or (model.assignee if model else None)
        plan.assignee_id = _routed_assignee(plan, wanted, model)

    priority = registration.priority
    if outcome.priority and PRIORITY_RANK.get(outcome.priority, 0) > PRIORITY_RANK.get(priority, 0):
        priority = outcome.priority
    plan.registration = dataclasses.replace(
        registration, handling_department=department_code, assignee_id=plan.assignee_id, priority=priority
    )
    return plan


def apply_routing(mail: Mail, plan: RoutingPlan, configuration: Configuration, actor_id: int | None,
                  today: date, new_mail: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Add the routed copies and the model's copies and opinions to the mail; return the trace to store.

    ``new_mail`` is true when the mail was inserted in this transaction and has
    no distribution entry yet, so the entries already present are not read.
    """
    # Filled by add_copies and add_opinion_requests, so the model's entries skip the routed ones.
    existing = DistributionTargets() if new_mail else None
    users = user_ids_by_username(plan.outcome.copy_users)
    codes = department_ids_by_code(plan.outcome.copy_departments)
    for name in plan.outcome.copy_users:
        if name not in users:
            plan.note("copy_user_unknown", user=name)
    copies = add_copies(mail, list(users.values()), list(codes.values()), actor_id, now, existing=existing)
    names = target_names(users, codes)
    added = {"copies": [describe_target(entry, names) for entry in copies], "opinions": []}
    model = configuration.distribution_lists.get(plan.model_id) if plan.model_id else None
    if model is not None:
        from_model = apply_model(mail, model, actor_id, today, now, existing=existing)
        added["copies"] += from_model["copies"]
        added["opinions"] += from_model["opinions"]
    trace = plan.trace()
    trace["added"] = added
    return trace

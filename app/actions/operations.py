"""The actions on a mail: one operation each, run as one transaction.

``perform_action`` checks, in order: the action exists, the user may see the
mail (or stands in for an absent agent who may), the mail has not changed
since the user loaded it (``row_version``), the mail's status allows the
action, the user holds the action's permission and one of its relations to
the mail, and the action's own input.  It then changes the rows, writes the
history entry ("X on behalf of Y" for a delegate), queues notifications and
the search update, and commits.  Any failure rolls everything back.

``perform_bulk`` runs one action on many mails, each in its own transaction,
and reports each success and failure with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.configuration.specs import ActionSpec
from app.core.db import run_in_write_transaction
from app.core.errors import Conflict, EstafetteError, NotFound, PermissionDenied, ValidationFailed
from app.core.types import utcnow
from app.distribution.models import COPY, OPINION, DistributionEntry
from app.distribution.operations import (
    OpinionTarget,
    add_copies,
    add_opinion_requests,
    apply_model,
    department_ids_by_code,
    department_model,
    describe_target,
    entry_targets_user_clause,
    is_member_of_tree,
    mark_read,
    opinion_due_date,
    pending_opinions_for,
)
from app.extensions import db
from app.mail.baskets import direction_department_ids
from app.mail.fields import clean_field_values
from app.mail.models import HistoryEntry, Mail
from app.mail.visibility import seeing_context
from app.organisation.context import UserContext
from app.organisation.models import Department, UserDepartment
from app.search.models import OutboxEvent

log = logging.getLogger(__name__)

MAX_COMMENT_LENGTH = 5000
# Working days given for an opinion when the requester names no deadline.
DEFAULT_OPINION_WORKING_DAYS = 10
MAX_BULK_MAILS = 1000


class ActionNotAllowed(EstafetteError):
    """The mail's status does not allow the action."""

    http_status = 409


@dataclass
class ActionInput:
    """What the user gives with an action; each operation reads the keys it needs."""

    comment: str | None = None
    department: str | None = None
    assignee_id: int | None = None
    copy_user_ids: list[int] = field(default_factory=list)
    copy_departments: list[str] = field(default_factory=list)
    opinion_user_id: int | None = None
    opinion_department: str | None = None
    opinion_due_date: date | None = None
    # Values of fields required at closing, as typed.
    fields: dict[str, Any] = field(default_factory=dict)
    # The mail's row_version when the user loaded it; None skips the check (bulk actions).
    expected_version: int | None = None
    locale: str = "fr"


@dataclass
class ActionResult:
    mail: Mail
    action: ActionSpec
    on_behalf_of_id: int | None


@dataclass
class _Context:
    """Everything an operation needs while it runs inside the transaction."""

    actor: UserContext
    # The user whose rights allow the action: the actor, or the absent agent they stand in for.
    acting: UserContext
    mail: Mail
    action: ActionSpec
    data: ActionInput
    configuration: Configuration
    now: datetime
    today: date
    details: dict[str, Any] = field(default_factory=dict)
    # Status to set after the operation; operations may change it (give_opinion).
    next_status: str | None = None


# --- Checks -----------------------------------------------------------------------


def _relations(user: UserContext, mail: Mail) -> set[str]:
    relations = {"any_visible"}
    if mail.assignee_id == user.user_id:
        relations.add("assignee")
    if mail.handling_department_id in user.scope_department_ids:
        relations.add("handling_department")
    if mail.created_by_id == user.user_id:
        relations.add("registrar")
    entries = db.session.execute(
        select(DistributionEntry.role, DistributionEntry.answered_at).where(
            DistributionEntry.mail_id == mail.id, entry_targets_user_clause(user.user_id, user.scope_department_ids)
        )
    ).all()
    if any(role == COPY for role, _answered in entries):
        relations.add("copy")
    if any(role == OPINION and answered is None for role, answered in entries):
        relations.add("opinion_requested")
    return relations


def may_run(user: UserContext, action: ActionSpec, mail: Mail) -> bool:
    """Return True when ``user``'s own rights allow ``action`` on ``mail`` (status aside)."""
    if action.permission is not None and not user.can(action.permission):
        return False
    # Administrators act on any mail, except where the action needs their own place on the list.
    if user.can("administer") and action.operation not in ("give_opinion", "mark_read"):
        return True
    return bool(_relations(user, mail) & set(action.relations))


def _acting_context(actor: UserContext, action: ActionSpec, mail: Mail, locale: str) -> UserContext:
    from app.absences.operations import delegator_contexts

    if may_run(actor, action, mail):
        return actor
    for context in delegator_contexts(actor):
        if may_run(context, action, mail):
            return context
    raise PermissionDenied(_l("You may not run the action “%(action)s” on this mail.", action=action.labels.get(locale)))


def available_actions(user: UserContext, mail: Mail, configuration: Configuration) -> list[ActionSpec]:
    """Return the actions ``user`` (or an absent agent they stand in for) may run on ``mail`` now, in order."""
    from app.absences.operations import delegator_contexts

    contexts = [user, *delegator_contexts(user)]
    actions = sorted(configuration.actions.values(), key=lambda item: (item.order, item.id))
    return [
        action for action in actions
        if mail.status in action.from_statuses and any(may_run(context, action, mail) for context in contexts)
    ]


def _check_comment(context: _Context) -> None:
    comment = (context.data.comment or "").strip()
    rule = context.action.comment
    if rule == "required" and not comment:
        raise ValidationFailed({"comment": [str(_l("A comment is required for this action."))]})
    if len(comment) > MAX_COMMENT_LENGTH:
        raise ValidationFailed({"comment": [str(_l("At most %(limit)s characters.", limit=MAX_COMMENT_LENGTH))]})
    if comment and rule != "none":
        context.details["comment"] = comment


# --- Operations -------------------------------------------------------------------


def _check_assignee_in(department: Department, user_id: int) -> None:
    if not is_member_of_tree(user_id, department):
        raise ValidationFailed(
            {"assignee_id": [str(_l("The assignee must belong to the handling department or one of its sub-departments."))]}
        )


def _set_assignee(context: _Context, user_id: int | None) -> None:
    mail = context.mail
    if user_id == mail.assignee_id:
        return
    context.details["from_assignee_id"] = mail.assignee_id
    context.details["to_assignee_id"] = user_id
    mail.assignee_id = user_id
    if user_id is not None:
        from app.actions.notifications import queue_notification

        queue_notification("mail_assigned", mail, [user_id], context.actor)


def _qualify(context: _Context) -> None:
    if context.data.assignee_id is not None:
        _check_assignee_in(context.mail.handling_department, context.data.assignee_id)
        _set_assignee(context, context.data.assignee_id)


def _assign(context: _Context) -> None:
    if context.data.assignee_id is None:
        raise ValidationFailed({"assignee_id": [str(_l("Choose the assignee."))]})
    _check_assignee_in(context.mail.handling_department, context.data.assignee_id)
    _set_assignee(context, context.data.assignee_id)


def _redirect_bound(context: _Context) -> str:
    for bound in context.action.bounds:
        if context.acting.can(bound.permission):
            return bound.bound
    return "any" if not context.action.bounds else "none"


def _redirect(context: _Context) -> None:
    data, mail = context.data, context.mail
    if not data.department:
        raise ValidationFailed({"department": [str(_l("Choose the department to send the mail to."))]})
    target = db.session.execute(
        select(Department).where(Department.code == data.department, Department.active.is_(True))
    ).scalar_one_or_none()
    if target is None:
        raise ValidationFailed({"department": [str(_l("Unknown department %(code)s.", code=data.department))]})

    bound = _redirect_bound(context)
    allowed = (
        bound == "any"
        or (bound == "my_sub_departments" and target.id in context.acting.scope_department_ids)
        or (bound == "my_direction" and target.id in direction_department_ids(context.acting))
    )
    if not allowed:
        raise PermissionDenied(_l("You may not send mail to %(code)s: it is outside the departments you may redirect to.",
                                  code=target.code))

    model = department_model(context.configuration, target.code)
    assignee_id = data.assignee_id
    if assignee_id is not None:
        _check_assignee_in(target, assignee_id)
    elif model is not None and model.assignee:
        from app.distribution.operations import user_ids_by_username

        default = user_ids_by_username([model.assignee]).get(model.assignee)
        assignee_id = default if default is not None and is_member_of_tree(default, target) else None
    if target.id == mail.handling_department_id and assignee_id == mail.assignee_id:
        raise ValidationFailed({"department": [str(_l("The mail is already with this department and assignee."))]})

    context.details["from_department"] = mail.handling_department.code
    context.details["to_department"] = target.code
    mail.handling_department_id = target.id
    mail.handling_department = target
    _set_assignee(context, assignee_id)
    if model is not None:
        context.details["model"] = model.id
        context.details["added"] = apply_model(mail, model, context.actor.user_id, context.today, context.now)


def _copy(context: _Context) -> None:
    data = context.data
    codes = department_ids_by_code(data.copy_departments)
    unknown = [code for code in data.copy_departments if code not in codes]
    if unknown:
        raise ValidationFailed({"copy_departments": [str(_l("Unknown department %(code)s.", code=unknown[0]))]})
    if not data.copy_user_ids and not codes:
        raise ValidationFailed({"copy_user_ids": [str(_l("Choose at least one person or department to copy."))]})
    added = add_copies(context.mail, data.copy_user_ids, list(codes.values()), context.actor.user_id, context.now)
    db.session.flush()
    context.details["copies"] = [describe_target(entry) for entry in added]
    from app.actions.notifications import queue_notification

    recipients = [entry.user_id for entry in added if entry.user_id]
    recipients += _members_of([entry.department_id for entry in added if entry.department_id])
    queue_notification("copy_received", context.mail, recipients, context.actor)


def _members_of(department_ids: list[int]) -> list[int]:
    """Return the users who belong to one of ``department_ids``: what is sent to a department is notified to them."""
    if not department_ids:
        return []
    members = select(UserDepartment.user_id).where(UserDepartment.department_id.in_(department_ids))
    return sorted(set(db.session.execute(members).scalars()))


def _ask_opinion(context: _Context) -> None:
    data = context.data
    if (data.opinion_user_id is None) == (not data.opinion_department):
        raise ValidationFailed({"opinion_user_id": [str(_l("Choose one person or one department to ask."))]})
    department_id = None
    if data.opinion_department:
        department_id = department_ids_by_code([data.opinion_department]).get(data.opinion_department)
        if department_id is None:
            raise ValidationFailed(
                {"opinion_department": [str(_l("Unknown department %(code)s.", code=data.opinion_department))]}
            )
    due = data.opinion_due_date or opinion_due_date(DEFAULT_OPINION_WORKING_DAYS, context.today)
    if due < context.today:
        raise ValidationFailed({"opinion_due_date": [str(_l("The deadline of the opinion cannot be in the past."))]})
    added = add_opinion_requests(
        context.mail, [OpinionTarget(data.opinion_user_id, department_id, due)], context.actor.user_id, context.now
    )
    if not added:
        raise ValidationFailed({"opinion_user_id": [str(_l("An opinion of this person or department is already awaited."))]})
    db.session.flush()
    context.details["opinion_of"] = describe_target(added[0])
    context.details["opinion_due_date"] = due.isoformat()
    from app.actions.notifications import queue_notification

    recipients = [data.opinion_user_id] if department_id is None else _members_of([department_id])
    params: dict[str, Any] = {"due_date": due.isoformat()}
    if context.details.get("comment"):
        # The question asked, so that the e-mail states what the opinion is about.
        params["comment"] = str(context.details["comment"])[:MAX_QUESTION_IN_NOTIFICATION]
    queue_notification("opinion_requested", context.mail, recipients, context.actor, params)


# Characters of the question kept in an opinion request's notification; the mail page shows all of it.
MAX_QUESTION_IN_NOTIFICATION = 500


def _give_opinion(context: _Context) -> None:
    mail, acting = context.mail, context.acting
    pending = pending_opinions_for(mail.id, acting.user_id, acting.scope_department_ids)
    if not pending:
        raise ActionNotAllowed(_l("No opinion is awaited from you on this mail."))
    entry = pending[0]
    entry.answer = context.details.get("comment")
    entry.answered_at = context.now
    entry.answered_by_id = context.actor.user_id
    db.session.flush()
    context.details["opinion_of"] = describe_target(entry)
    remaining = pending_opinions_count(mail.id)
    # The declared status is reached only when the last awaited opinion arrives.
    if remaining or mail.status != "awaiting_opinion":
        context.next_status = None
    from app.actions.notifications import queue_notification

    queue_notification("opinion_given", mail, [entry.requested_by_id], context.actor)


def pending_opinions_count(mail_id: int) -> int:
    from sqlalchemy import func

    from app.distribution.models import OPINION

    return int(
        db.session.execute(
            select(func.count()).select_from(DistributionEntry).where(
                DistributionEntry.mail_id == mail_id, DistributionEntry.role == OPINION,
                DistributionEntry.answered_at.is_(None),
            )
        ).scalar_one()
    )


def missing_required_fields(action: ActionSpec, mail: Mail, supplied: dict[str, Any] | None = None) -> list[str]:
    """Return the ids of the fields ``action`` requires on this mail's type that have no value."""
    supplied = supplied or {}
    missing = []
    for required in action.required_fields:
        if required.mail_type != mail.mail_type:
            continue
        for field_id in required.fields:
            stored = mail.fields.get(field_id)
            typed = supplied.get(field_id)
            if (stored is None or stored == "") and (typed is None or str(typed).strip() == ""):
                missing.append(field_id)
    return missing


def _field_label(spec: Any, field_id: str, locale: str) -> str:
    """Return the label of the mail type's field ``field_id`` in ``locale``, or its id for a field the type lacks."""
    declared = spec.field(field_id) if spec else None
    return declared.labels.get(locale) if declared else field_id


def _close(context: _Context) -> None:
    mail, data = context.mail, context.data
    spec = context.configuration.mail_types.get(mail.mail_type)
    missing = missing_required_fields(context.action, mail, data.fields)
    # Each field's message names its field: the mail page shows them in one line, away from the fields.
    if missing:
        labels = {item: _field_label(spec, item, data.locale) for item in missing}
        raise ValidationFailed(
            {f"field_{item}": [str(_l("%(field)s: required at closing.", field=label))] for item, label in labels.items()},
            _l("Fill in before closing: %(fields)s.", fields=", ".join(labels.values())),
        )
    typed = {key: value for key, value in data.fields.items() if value not in (None, "")}
    if typed and spec is not None:
        partial = spec.model_copy(update={"fields": [item for item in spec.fields if item.id in typed]})
        cleaned, errors = clean_field_values(partial, typed, data.locale)
        if errors:
            raise ValidationFailed({
                f"field_{key}": [str(_l("%(field)s: %(message)s", field=_field_label(spec, key, data.locale),
                                        message=message)) for message in messages]
                for key, messages in errors.items()
            })
        mail.fields = {**mail.fields, **cleaned}
        context.details["fields"] = cleaned
    mail.closed_at = context.now


def _reopen(context: _Context) -> None:
    context.details["closed_at"] = context.mail.closed_at.isoformat() if context.mail.closed_at else None
    context.mail.closed_at = None


def _mark_read(context: _Context) -> None:
    if not mark_read(context.mail.id, context.acting.user_id, context.now):
        raise ActionNotAllowed(_l("You have already marked this mail as read."))


OPERATIONS: dict[str, Callable[[_Context], None]] = {
    "qualify": _qualify,
    "assign": _assign,
    "redirect": _redirect,
    "copy": _copy,
    "ask_opinion": _ask_opinion,
    "give_opinion": _give_opinion,
    "close": _close,
    "close_without_follow_up": _close,
    "reopen": _reopen,
    "mark_read": _mark_read,
}
# Operations that change only the user's own state, not the mail: no row_version bump, no search update.
PERSONAL_OPERATIONS = {"mark_read"}


# --- Running an action ------------------------------------------------------------


MAIL_GONE_MESSAGE = _l(
    "This mail does not exist or you no longer have access to it: it may have just been redirected."
    " Reload your basket."
)


def _run(actor: UserContext, mail_id: int, action: ActionSpec, data: ActionInput,
         configuration: Configuration, now: datetime, today: date) -> ActionResult:
    mail = db.session.get(Mail, mail_id, populate_existing=True)
    # A change made meanwhile may have taken the mail out of the user's sight. The error is still
    # NotFound, as for a mail that never existed, because a Conflict would tell any agent that the
    # mail exists and how many times it changed.
    if mail is None or seeing_context(actor, mail) is None:
        raise NotFound(MAIL_GONE_MESSAGE) if data.expected_version is not None else NotFound()
    if data.expected_version is not None and data.expected_version != mail.row_version:
        raise Conflict()
    if mail.status not in action.from_statuses:
        status = configuration.statuses.get(mail.status)
        raise ActionNotAllowed(
            _l("This action is not possible on a mail whose status is %(status)s.",
               status=status.labels.get(data.locale) if status else mail.status)
        )
    acting = _acting_context(actor, action, mail, data.locale)
    context = _Context(actor, acting, mail, action, data, configuration, now, today, next_status=action.to)
    _check_comment(context)

    from_status = mail.status
    OPERATIONS[action.operation](context)
    if context.next_status is not None:
        mail.status = context.next_status
    closed = configuration.closed_statuses
    if (from_status in closed) != (mail.status in closed):
        # Closing removes the pending reminders; reopening plans them again from the due date.
        from app.reminders.operations import schedule_reminders

        schedule_reminders(mail, configuration.mail_types.get(mail.mail_type), configuration, now)
    if action.operation not in PERSONAL_OPERATIONS:
        mail.updated_at = now
        db.session.add(OutboxEvent(entity="mail", entity_id=mail.id, operation="upsert"))
    on_behalf_of_id = acting.user_id if acting.user_id != actor.user_id else None
    db.session.add(
        HistoryEntry(
            mail_id=mail.id, at=now, actor_id=actor.user_id, on_behalf_of_id=on_behalf_of_id, event=action.id,
            schema_version=configuration.version,
            details={"operation": action.operation, "from_status": from_status, "to_status": mail.status,
                     **context.details},
        )
    )
    db.session.flush()
    return ActionResult(mail, action, on_behalf_of_id)


def perform_action(
    actor: UserContext, mail_id: int, action_id: str, data: ActionInput | None = None, now: datetime | None = None
) -> ActionResult:
    """Run one declared action on one mail, as one transaction; raise a translated error on refusal."""
    from app.mail.operations import today_in_paris

    configuration = current_configuration()
    action = configuration.actions.get(action_id)
    if action is None:
        raise NotFound()
    data = data or ActionInput()
    moment = now or utcnow()
    today = today_in_paris(moment)
    try:
        result = run_in_write_transaction(
            lambda: _run(actor, mail_id, action, data, configuration, moment, today), f"action {action_id}"
        )
    except StaleDataError:
        # Another transaction changed the mail between our read and our write: nothing of ours was kept.
        db.session.rollback()
        log.info("action %s on mail %s by %s lost a concurrent update", action_id, mail_id, actor.display_name)
        raise Conflict() from None
    on_behalf = f" on behalf of user {result.on_behalf_of_id}" if result.on_behalf_of_id else ""
    log.info("mail %s %s by %s%s", result.mail.chrono, action_id, actor.display_name, on_behalf)
    return result


@dataclass
class BulkFailure:
    mail_id: int
    chrono: str | None
    message: str


@dataclass
class BulkReport:
    action: ActionSpec
    succeeded: list[tuple[int, str]] = field(default_factory=list)
    failed: list[BulkFailure] = field(default_factory=list)


def _failure_message(error: EstafetteError) -> str:
    if isinstance(error, ValidationFailed) and error.field_errors:
        details = "; ".join(" ".join(messages) for messages in error.field_errors.values())
        return f"{error.message} ({details})" if error.message not in details else details
    return error.message


def perform_bulk(
    actor: UserContext, action_id: str, mail_ids: list[int], data: ActionInput | None = None,
    now: datetime | None = None,
) -> BulkReport:
    """Run one bulk action on each mail in its own transaction; return what succeeded and why the rest failed."""
    configuration = current_configuration()
    action = configuration.actions.get(action_id)
    if action is None or not action.bulk:
        raise NotFound()
    if len(mail_ids) > MAX_BULK_MAILS:
        raise ValidationFailed({"mail_ids": [str(_l("At most %(limit)s mails at once.", limit=MAX_BULK_MAILS))]})
    report = BulkReport(action)
    base = data or ActionInput()
    for mail_id in dict.fromkeys(mail_ids):
        item = ActionInput(**{**base.__dict__, "expected_version": None})
        try:
            result = perform_action(actor, mail_id, action_id, item, now)
        except EstafetteError as error:
            db.session.rollback()
            report.failed.append(BulkFailure(mail_id, _visible_chrono(actor, mail_id), _failure_message(error)))
            continue
        report.succeeded.append((mail_id, result.mail.chrono))
    log.info("bulk %s by %s: %s done, %s failed", action_id, actor.display_name, len(report.succeeded), len(report.failed))
    return report


def _visible_chrono(actor: UserContext, mail_id: int) -> str | None:
    mail = db.session.get(Mail, mail_id)
    if mail is None or seeing_context(actor, mail) is None:
        return None
    return mail.chrono

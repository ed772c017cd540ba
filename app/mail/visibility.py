"""The one rule deciding which mail a user may see.

A user sees a mail when any of these holds:
- they have the ``read_all`` permission (administrators);
- they registered it or are its assignee;
- it is not confidential and its handling or initiating department is one of
  their departments or a sub-department of one.
Confidential mail is seen only by its assignee, the agent who registered it and
``read_all`` holders.  Lists, detail pages, downloads and the API all use
``visible_mail_clause`` or ``can_see``, so a mail id typed in a URL grants nothing.
"""

from __future__ import annotations

from sqlalchemy import and_, false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from app.mail.models import Mail
from app.organisation.context import UserContext


def visible_mail_clause(user: UserContext) -> ColumnElement[bool]:
    """Return a SQL condition on Mail that is true for the mail ``user`` may see."""
    if user.can("read_all"):
        return true()

    personal = or_(Mail.created_by_id == user.user_id, Mail.assignee_id == user.user_id)
    if not user.scope_department_ids:
        return personal
    scope = list(user.scope_department_ids)
    by_department = and_(
        Mail.confidential.is_(false()),
        or_(Mail.handling_department_id.in_(scope), Mail.initiating_department_id.in_(scope)),
    )
    return or_(personal, by_department)


def can_see(user: UserContext, mail: Mail) -> bool:
    """Apply the same rule as visible_mail_clause to one loaded mail."""
    if user.can("read_all"):
        return True
    if user.user_id in (mail.created_by_id, mail.assignee_id):
        return True
    if mail.confidential:
        return False
    return (
        mail.handling_department_id in user.scope_department_ids
        or mail.initiating_department_id in user.scope_department_ids
    )

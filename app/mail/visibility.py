"""The one rule deciding which mail a user may see.

A user sees a mail when any of these holds:
- they have the ``read_all`` permission (administrators);
- they registered it or are its assignee;
- they, or one of their departments or its sub-departments, are on its
  distribution list: in copy, asked for an opinion, or as a member of one of
  its visa circuits;
- it is not confidential and its handling or initiating department is one of
  their departments or a sub-department of one;
- they are today the delegate of an absent agent who sees it by the rules above.
Confidential mail is therefore seen only by its distribution list (assignee,
copies, opinions, circuit members), the agent who registered it, their delegates and
``read_all`` holders.  Lists, detail pages, downloads and the API all use
``visible_mail_clause`` or ``can_see``, so a mail id typed in a URL grants nothing.
"""

from __future__ import annotations

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from app.distribution.models import DistributionEntry
from app.extensions import db
from app.mail.models import Mail
from app.organisation.context import UserContext


def _listed_clause(user: UserContext, per_mail: bool) -> ColumnElement[bool]:
    targets = DistributionEntry.user_id == user.user_id
    if user.scope_department_ids:
        targets = or_(targets, DistributionEntry.department_id.in_(sorted(user.scope_department_ids)))
    if per_mail:
        entries = select(DistributionEntry.id).where(DistributionEntry.mail_id == Mail.id, targets)
        if db.engine.dialect.name == "postgresql":
            # OFFSET 0 keeps PostgreSQL 15 from turning EXISTS into a hash of all the user's entries.
            # It chose the hash for the thousands of mails a basket scans, but only the confidential
            # ones reach this test. Hashing 6,606 entries took 1.1 ms, for a page of 0.7 ms.
            entries = entries.offset(0)
        return entries.exists()
    return Mail.id.in_(select(DistributionEntry.mail_id).where(targets))


def _own_clause(user: UserContext, per_mail: bool, confidential_only: bool = False) -> ColumnElement[bool]:
    """Return what ``user`` sees by their own rights, without read_all and without delegation."""
    personal = or_(Mail.created_by_id == user.user_id, Mail.assignee_id == user.user_id)
    if confidential_only or not user.scope_department_ids:
        return or_(personal, _listed_clause(user, per_mail))
    scope = sorted(user.scope_department_ids)
    by_department = and_(
        Mail.confidential.is_(false()),
        or_(Mail.handling_department_id.in_(scope), Mail.initiating_department_id.in_(scope)),
    )
    return or_(personal, by_department, _listed_clause(user, per_mail))


def visible_mail_clause(
    user: UserContext, *, per_mail: bool = False, confidential_only: bool = False
) -> ColumnElement[bool]:
    """Return a SQL condition on Mail that is true for the mail ``user`` may see.

    By default the distribution list is tested as ``mail.id IN (the user's
    entries)``, which the database reads once per query. ``per_mail`` tests
    ``EXISTS`` on the mail's own entries instead. That is cheaper when the
    caller's query reaches this test for a few mails only, such as the
    confidential mail of a department basket. Both forms select the same mail.

    ``confidential_only`` leaves out the departments' branch, which is never
    true for confidential mail: the condition is then right only where the
    caller's query already keeps confidential mail alone. PostgreSQL plans
    the shorter condition in less time.
    """
    from app.absences.operations import delegator_contexts

    if user.can("read_all"):
        return true()
    delegators = delegator_contexts(user)
    if any(context.can("read_all") for context in delegators):
        return true()
    return or_(
        _own_clause(user, per_mail, confidential_only),
        *(_own_clause(context, per_mail, confidential_only) for context in delegators),
    )


def _is_listed(user: UserContext, mail: Mail) -> bool:
    found = db.session.execute(
        select(DistributionEntry.id)
        .where(DistributionEntry.mail_id == mail.id)
        .where(
            or_(
                DistributionEntry.user_id == user.user_id,
                DistributionEntry.department_id.in_(sorted(user.scope_department_ids)),
            )
        )
        .limit(1)
    ).first()
    return found is not None


def _sees_by_own_rights(user: UserContext, mail: Mail) -> bool:
    if user.can("read_all"):
        return True
    if user.user_id in (mail.created_by_id, mail.assignee_id):
        return True
    in_scope = (
        mail.handling_department_id in user.scope_department_ids
        or mail.initiating_department_id in user.scope_department_ids
    )
    if in_scope and not mail.confidential:
        return True
    return _is_listed(user, mail)


def can_see(user: UserContext, mail: Mail) -> bool:
    """Apply the same rule as visible_mail_clause to one loaded mail."""
    from app.absences.operations import delegator_contexts

    if _sees_by_own_rights(user, mail):
        return True
    return any(_sees_by_own_rights(context, mail) for context in delegator_contexts(user))


def seeing_context(user: UserContext, mail: Mail) -> UserContext | None:
    """Return the user, or the absent agent they stand in for, whose rights show them ``mail``; None if nobody's."""
    from app.absences.operations import delegator_contexts

    if _sees_by_own_rights(user, mail):
        return user
    return next((context for context in delegator_contexts(user) if _sees_by_own_rights(context, mail)), None)


# --- The same rule for search engines ----------------------------------------
# Elasticsearch and OpenSearch cannot join to the database, so each indexed mail
# carries the facts below and search_visibility_filter() states the rule above
# over them. tests/integration/test_search_visibility.py compares both on mixed data.


def visibility_facts(mail: Mail, entries: list[DistributionEntry] | None = None) -> dict[str, object]:
    """Return the facts of ``mail`` that search_visibility_filter() tests, to index with it.

    ``entries`` are the mail's distribution entries when the caller loaded them already.
    """
    if entries is None:
        entries = list(db.session.execute(select(DistributionEntry).where(DistributionEntry.mail_id == mail.id)).scalars())
    return {
        "handling_department_id": mail.handling_department_id,
        "initiating_department_id": mail.initiating_department_id,
        "created_by_id": mail.created_by_id,
        "assignee_id": mail.assignee_id,
        "confidential": bool(mail.confidential),
        "listed_user_ids": sorted({row.user_id for row in entries if row.user_id is not None}),
        "listed_department_ids": sorted({row.department_id for row in entries if row.department_id is not None}),
    }


def search_visibility_filter(user: UserContext) -> dict[str, object] | None:
    """Return an Elasticsearch/OpenSearch filter equal to visible_mail_clause(user); None when all is visible.

    The user's own rights and those of the absent agents they stand in for
    are one disjunction, so their ids and department scopes are merged.
    """
    from app.absences.operations import delegator_contexts

    contexts = [user, *delegator_contexts(user)]
    if any(context.can("read_all") for context in contexts):
        return None
    user_ids = sorted({context.user_id for context in contexts})
    scope = sorted(set().union(*(context.scope_department_ids for context in contexts)))

    should: list[dict[str, object]] = [
        {"terms": {"created_by_id": user_ids}},
        {"terms": {"assignee_id": user_ids}},
        {"terms": {"listed_user_ids": user_ids}},
    ]
    if scope:
        should.append({"terms": {"listed_department_ids": scope}})
        should.append({
            "bool": {
                "must_not": [{"term": {"confidential": True}}],
                "should": [
                    {"terms": {"handling_department_id": scope}},
                    {"terms": {"initiating_department_id": scope}},
                ],
                "minimum_should_match": 1,
            }
        })
    return {"bool": {"should": should, "minimum_should_match": 1}}

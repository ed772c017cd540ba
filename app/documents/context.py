"""Gather the merge context of one document from the mail, its correspondents, department and deadlines."""

from __future__ import annotations

from datetime import date

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select

from app.configuration.loader import Configuration
from app.correspondents.models import Correspondent
from app.deadlines.operations import implicit_decision_for, missing_documents_of
from app.documents.fields import Contact, MergeContext, Person
from app.extensions import db
from app.mail.models import Mail
from app.organisation.models import Department, UserDepartment


def person_of(correspondent: Correspondent | None) -> Person:
    if correspondent is None:
        return Person()
    name = " ".join(part for part in (correspondent.first_name, correspondent.last_name) if part)
    locality = " ".join(part for part in (correspondent.postcode, correspondent.city) if part)
    address = "\n".join(part.strip() for part in (correspondent.address, locality) if part and part.strip())
    return Person(
        civility=correspondent.civility or "", name=name, organisation=correspondent.organisation or "",
        address=address, email=correspondent.email or "",
    )


def senders_of(mail: Mail) -> list[Correspondent]:
    return [link.correspondent for link in mail.correspondents if link.role == "sender"]


def default_addressee(mail: Mail) -> Correspondent | None:
    """Return whom a document on ``mail`` is addressed to by default: its first sender, or first recipient."""
    for role in ("sender", "recipient"):
        for link in mail.correspondents:
            if link.role == role:
                return link.correspondent
    return None


def department_contact(department: Department, language: str) -> Contact:
    """Return the department's contact details; the postal address is the nearest one up the tree.

    A bureau shares the building of its directorate, so it may inherit that
    address. Its phone number and e-mail address must be its own, because the
    public reaches the service in charge through them.
    """
    address = department.address
    parent = department.parent
    while not address and parent is not None:
        address = parent.address
        parent = parent.parent
    return Contact(
        label=department.label(language), address=(address or "").strip(), phone=(department.phone or "").strip(),
        email=(department.email or "").strip(),
    )


def agent_of(user_id: int | None, language: str) -> tuple[str, str]:
    """Return the agent's name and position: head of their department, or the department they work in."""
    if user_id is None:
        return "", ""
    user = db.session.get(User, user_id)
    if user is None:
        return "", ""
    name = f"{user.first_name or ''} {user.last_name or ''}".strip()
    memberships = db.session.execute(
        select(UserDepartment).where(UserDepartment.user_id == user_id)
        .order_by(UserDepartment.is_head.desc(), UserDepartment.is_primary.desc(), UserDepartment.id)
    ).scalars().first()
    if memberships is None:
        return name, ""
    label = memberships.department.label(language)
    if memberships.is_head:
        return name, (f"Head of {label}" if language == "en" else f"Chef de service, {label}")
    return name, label


def merge_context(
    mail: Mail, addressee: Correspondent | None, actor_id: int | None, language: str,
    configuration: Configuration, today: date,
) -> MergeContext:
    spec = configuration.mail_types.get(mail.mail_type)
    decision = implicit_decision_for(mail, spec)
    missing = [
        item for record in missing_documents_of(mail.id) if record.received_on is None for item in record.documents
    ]
    senders = senders_of(mail)
    agent_name, agent_title = agent_of(actor_id, language)
    from app.mail.operations import today_in_paris

    return MergeContext(
        language=language,
        registration_number=mail.chrono,
        subject=mail.subject,
        mail_type_label=spec.labels.get(language) if spec else mail.mail_type,
        arrival_date=mail.arrival_date,
        letter_date=mail.letter_date,
        registration_date=today_in_paris(mail.created_at),
        due_date=mail.due_date,
        today=today,
        sender=person_of(senders[0] if senders else None),
        addressee=person_of(addressee),
        department=department_contact(mail.handling_department, language),
        agent_name=agent_name,
        agent_title=agent_title,
        regime=decision.regime,
        implicit_decision_date=decision.date,
        legal_delay_months=decision.months,
        legal_delay_days=decision.days,
        missing_documents=missing,
    )

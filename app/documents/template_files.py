"""The .docx files of the declared templates: recorded from the schemas, replaced by administrators' uploads.

The database, not the schemas directory, contains the file in use: the newest
``TemplateFile`` row of a (template, language) pair. ``flask schemas apply``
records a schema file when its content differs from the last one recorded
from the schemas, so a changed file in a new release replaces an upload, and
an unchanged one leaves the administrator's upload in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.attachments.operations import content_store
from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.configuration.specs import TemplateSpec
from app.core.db import run_in_write_transaction
from app.core.errors import NotFound, PermissionDenied, ValidationFailed
from app.core.types import utcnow
from app.documents.models import TemplateFile
from app.documents.rendering import TemplateInvalid, check_template
from app.extensions import db
from app.mail.models import Mail
from app.organisation.context import UserContext
from app.organisation.models import Department

log = logging.getLogger(__name__)

# A template is a letter: a few hundred kilobytes with a logo. Larger uploads are refused.
MAX_TEMPLATE_BYTES = 10 * 1024 * 1024

TEMPLATE_ERRORS = {
    "not_docx": _l("The file %(name)s is not a .docx document: save the template in Word format (.docx)."),
    "syntax": _l("The template %(name)s has a placeholder error: %(detail)s"),
    "unknown_field": _l(
        "The template %(name)s uses the unknown merge field “%(field)s”: use only the fields listed on this page."
    ),
    "missing_mention": _l(
        "The acknowledgement template %(name)s lacks the merge field “%(field)s”, needed for a mention "
        "required by CRPA article R112-5."
    ),
}


@dataclass(frozen=True)
class StoredTemplateFile:
    template_id: str
    language: str
    sha256: str
    size: int
    file_name: str


def store_schema_template_files(configuration: Configuration, directory: Path) -> list[StoredTemplateFile]:
    """Write every template file the schemas name to the content store; the loader has checked them."""
    store = content_store()
    stored = []
    for spec in configuration.templates.values():
        for language in spec.languages:
            relative = spec.files.get(language) or ""
            blob = store.put_bytes((directory / relative).read_bytes())
            stored.append(StoredTemplateFile(spec.id, language, blob.sha256, blob.size, Path(relative).name))
    return stored


def record_schema_template_files(stored: list[StoredTemplateFile], actor_id: int | None) -> int:
    """Record the schema files whose content changed since the last one recorded from the schemas; return how many."""
    recorded = 0
    for item in stored:
        last = db.session.execute(
            select(TemplateFile.sha256)
            .where(TemplateFile.template_id == item.template_id, TemplateFile.language == item.language,
                   TemplateFile.source == "schema")
            .order_by(TemplateFile.id.desc()).limit(1)
        ).scalar_one_or_none()
        if last == item.sha256:
            continue
        db.session.add(TemplateFile(
            template_id=item.template_id, language=item.language, sha256=item.sha256, size=item.size,
            source="schema", file_name=item.file_name, created_by_id=actor_id,
        ))
        recorded += 1
    if recorded:
        log.info("%s template files recorded from the schemas", recorded)
    return recorded


def current_template_file(template_id: str, language: str) -> TemplateFile | None:
    return db.session.execute(
        select(TemplateFile)
        .where(TemplateFile.template_id == template_id, TemplateFile.language == language)
        .order_by(TemplateFile.id.desc()).limit(1)
    ).scalar_one_or_none()


def template_file_history(template_id: str) -> list[TemplateFile]:
    return list(db.session.execute(
        select(TemplateFile).where(TemplateFile.template_id == template_id).order_by(TemplateFile.id.desc())
    ).scalars())


def read_template_file(row: TemplateFile) -> bytes:
    with content_store().open_verified(row.sha256) as handle:
        return handle.read()


def template_spec(template_id: str, configuration: Configuration | None = None) -> TemplateSpec:
    spec = (configuration or current_configuration()).templates.get(template_id)
    if spec is None:
        raise NotFound()
    return spec


def template_error_message(invalid: TemplateInvalid, name: str) -> str:
    message = TEMPLATE_ERRORS.get(invalid.code, TEMPLATE_ERRORS["not_docx"])
    return str(message) % {"name": name, "detail": "", "field": "", **invalid.params}


def upload_template_file(
    actor: UserContext, template_id: str, language: str, stream: IO[bytes], file_name: str | None
) -> TemplateFile:
    """Replace the file of a template in one language with an administrator's upload, after checking it.

    The file must be a .docx that docxtpl can render, using only registered
    merge fields (and, for an acknowledgement, every field of its mentions).
    Raises PermissionDenied, NotFound or ValidationFailed naming the problem.
    """
    if not actor.can("administer"):
        raise PermissionDenied(_l("Only administrators may replace document templates."))
    spec = template_spec(template_id)
    if language not in ("fr", "en"):
        raise NotFound()
    name = Path(file_name or "template.docx").name or "template.docx"
    data = stream.read(MAX_TEMPLATE_BYTES + 1)
    if len(data) > MAX_TEMPLATE_BYTES:
        raise ValidationFailed({"file": [str(_l("The template is larger than the limit of %(limit)s MB.",
                                                limit=MAX_TEMPLATE_BYTES // (1024 * 1024)))]})
    try:
        check_template(data, spec.kind)
    except TemplateInvalid as invalid:
        message = template_error_message(invalid, name)
        raise ValidationFailed({"file": [message]}, message) from None
    blob = content_store().put_bytes(data)

    def record() -> TemplateFile:
        row = TemplateFile(
            template_id=template_id, language=language, sha256=blob.sha256, size=blob.size, source="upload",
            file_name=name[:255], created_at=utcnow(), created_by_id=actor.user_id,
        )
        db.session.add(row)
        db.session.flush()
        return row

    row = run_in_write_transaction(record, f"upload template {template_id}")
    log.info("template %s (%s) replaced by %s with %s", template_id, language, actor.display_name, name)
    return row


def templates_for(mail: Mail, kind: str, configuration: Configuration | None = None) -> list[TemplateSpec]:
    """Return the templates of ``kind`` that the mail's type and handling department may use, in order."""
    configuration = configuration or current_configuration()
    ancestors = _department_codes_above(mail.handling_department)
    found = [
        spec for spec in configuration.templates.values()
        if spec.kind == kind
        and (not spec.mail_types or mail.mail_type in spec.mail_types)
        and (not spec.departments or ancestors & set(spec.departments))
    ]
    return sorted(found, key=lambda spec: (spec.order, spec.id))


def _department_codes_above(department: Department) -> set[str]:
    """Return the codes of the department and of every department above it."""
    ids = [int(part) for part in department.path.strip("/").split("/") if part]
    if not ids:
        return {department.code}
    return set(db.session.execute(select(Department.code).where(Department.id.in_(ids))).scalars())


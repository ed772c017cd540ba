"""The nightly deletion of the one-time tokens of registration forms sent more than a day ago."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete

from app.extensions import db
from app.mail.models import RegistrationSubmission

log = logging.getLogger(__name__)

# A form sent again later than this, from a page kept open, registers a new mail.
SUBMISSION_KEPT = timedelta(days=1)


def forget_registration_submissions(now: datetime) -> dict[str, int]:
    """Delete the tokens of registration forms sent more than a day before ``now``."""
    deleted = db.session.execute(
        delete(RegistrationSubmission).where(RegistrationSubmission.created_at < now - SUBMISSION_KEPT)
    ).rowcount
    db.session.commit()
    log.info("registration form tokens: %s older than %s deleted", deleted, SUBMISSION_KEPT)
    return {"deleted": deleted}

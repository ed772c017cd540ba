"""The one place where actions raise notifications.

``queue_notification`` hands the event to ``app.notifications.operations.notify``,
which writes in the caller's transaction: a notification exists exactly when
the action that caused it does.  Events the notifications area does not
declare (a redirection without a new assignee, a closing) are logged only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from app.mail.models import Mail
from app.organisation.context import UserContext

log = logging.getLogger(__name__)


def queue_notification(
    event: str, mail: Mail | None, recipients: Iterable[int | None], actor: UserContext | None,
    params: dict[str, Any] | None = None,
) -> None:
    """Notify ``recipients`` (user ids) of ``event`` on ``mail``, inside the current transaction."""
    from app.notifications.operations import EVENTS, notify

    if event not in EVENTS:
        log.debug("no notification for event %s on mail %s", event, mail.id if mail else None)
        return
    notify(event, mail, list(recipients), actor=actor, params=params)

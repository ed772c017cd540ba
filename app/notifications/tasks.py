"""The scheduled jobs of notifications: send queued e-mail, queue the daily digests."""

from __future__ import annotations

from datetime import datetime

from app.notifications.mail import deliver_pending
from app.notifications.operations import send_digests


def deliver_email(now: datetime) -> dict[str, int]:
    return deliver_pending(now).as_dict()


def queue_digests(now: datetime) -> dict[str, int]:
    return send_digests(now)

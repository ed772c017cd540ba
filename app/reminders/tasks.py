"""The scheduled job that sends due reminders."""

from __future__ import annotations

from datetime import datetime

from app.reminders.operations import send_due_reminders


def sweep_reminders(now: datetime) -> dict[str, int]:
    """Send the reminders due at ``now``; return how many were sent and cancelled."""
    return send_due_reminders(now).as_dict()

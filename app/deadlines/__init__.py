"""Business calendars and legal delay computation for the mail register."""

from app.deadlines.calendar import (
    ZONES,
    BusinessCalendar,
    CalendarZone,
    Holiday,
    Zone,
    compute_due_date,
    get_calendar,
)
from app.deadlines.legal import (
    REGIMES,
    MissingDocumentsRequest,
    SilenceRegime,
    add_months,
    implicit_decision_date,
)

__all__ = [
    "REGIMES",
    "ZONES",
    "BusinessCalendar",
    "CalendarZone",
    "Holiday",
    "MissingDocumentsRequest",
    "SilenceRegime",
    "Zone",
    "add_months",
    "compute_due_date",
    "get_calendar",
    "implicit_decision_date",
]

"""Business calendar for French administrative delays, per holiday zone.

Public holidays come from the ``holidays`` package (``holidays.France``,
pinned at 0.109), never from a list kept in this repository.

Counting rule for delays expressed in days, as in French procedure (article
641 of the Code de procedure civile): the day of receipt does not count.

* Working days: the due date is the Nth working day strictly after the day of
  receipt, whatever kind of day the receipt fell on (working day, weekend or
  public holiday). Example with a delay of 3 working days, 11 November 2026
  being a public holiday: a receipt on Friday 6 or Saturday 7 November 2026
  gives Thursday 12 November. A receipt on Monday 9 November gives Friday
  13 November.
* Calendar days: the due date is the Nth calendar day after the day of
  receipt. It is not moved when it falls on a weekend or a public holiday.

A working day is a Monday to Friday that is not a public holiday of the zone.
"""

from __future__ import annotations

import bisect
import enum
import functools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, date, timedelta
from types import MappingProxyType
from typing import Literal, NamedTuple

import holidays

logger = logging.getLogger(__name__)

# On a miss, the working-day index grows to cover the year before the
# requested date and this many years from it, so that a run of calls on nearby
# dates builds the index once.
_YEARS_PER_EXTENSION = 3

# `holidays.France` covers years from 1803 onwards.
_FIRST_SUPPORTED_YEAR = 1803
_LAST_SUPPORTED_YEAR = MAXYEAR - 1


class CalendarZone(enum.StrEnum):
    """Holiday zone of a French department."""

    METROPOLE = "metropole"
    ALSACE_MOSELLE = "alsace_moselle"
    GUADELOUPE = "guadeloupe"
    MARTINIQUE = "martinique"
    GUYANE = "guyane"
    LA_REUNION = "la_reunion"
    MAYOTTE = "mayotte"


@dataclass(frozen=True)
class Zone:
    """Holiday zone: its id, its labels and the `holidays.France` subdivisions it uses."""

    id: str
    label_fr: str
    label_en: str
    # Codes passed as `holidays.France(subdiv=...)`. The zone's holidays are
    # the union over these codes, and an empty tuple means the national list.
    subdivisions: tuple[str, ...]


# In holidays 0.109, "57" (Moselle) and "6AE" (Alsace, departments 67 and 68)
# both add Good Friday and 26 December. The overseas codes add each
# department's abolition-of-slavery day, and "971" (Guadeloupe) also adds
# Good Friday, Mi-Careme and Victor Schoelcher Day.
ZONES: Mapping[str, Zone] = MappingProxyType(
    {
        CalendarZone.METROPOLE.value: Zone(
            CalendarZone.METROPOLE.value, "Métropole", "Mainland France", ()
        ),
        CalendarZone.ALSACE_MOSELLE.value: Zone(
            CalendarZone.ALSACE_MOSELLE.value,
            "Alsace-Moselle",
            "Alsace-Moselle",
            ("57", "6AE"),
        ),
        CalendarZone.GUADELOUPE.value: Zone(
            CalendarZone.GUADELOUPE.value, "Guadeloupe", "Guadeloupe", ("971",)
        ),
        CalendarZone.MARTINIQUE.value: Zone(
            CalendarZone.MARTINIQUE.value, "Martinique", "Martinique", ("972",)
        ),
        CalendarZone.GUYANE.value: Zone(
            CalendarZone.GUYANE.value, "Guyane", "French Guiana", ("973",)
        ),
        CalendarZone.LA_REUNION.value: Zone(
            CalendarZone.LA_REUNION.value, "La Réunion", "Réunion", ("974",)
        ),
        CalendarZone.MAYOTTE.value: Zone(
            CalendarZone.MAYOTTE.value, "Mayotte", "Mayotte", ("976",)
        ),
    }
)

DelayUnit = Literal["working", "calendar"]


class Holiday(NamedTuple):
    """Public holiday: its date and its name."""

    date: date
    name: str


def _validate_zone(zone: str) -> Zone:
    try:
        return ZONES[zone]
    except KeyError:
        valid = ", ".join(ZONES)
        raise ValueError(
            f"Unknown calendar zone {zone!r}. Use one of: {valid}."
        ) from None


def _validate_year(year: int) -> None:
    if not _FIRST_SUPPORTED_YEAR <= year <= _LAST_SUPPORTED_YEAR:
        raise ValueError(
            f"Year {year} is outside the supported range "
            f"{_FIRST_SUPPORTED_YEAR}-{_LAST_SUPPORTED_YEAR}."
        )


@functools.lru_cache(maxsize=1024)
def _zone_holidays(zone: Zone, year: int, language: str) -> Mapping[date, str]:
    """Collect the public holidays of `zone` in `year`, keyed by date, in date order."""
    _validate_year(year)
    found: dict[date, str] = {}
    subdivisions = zone.subdivisions or (None,)
    for subdivision in subdivisions:
        country = holidays.France(subdiv=subdivision, years=year, language=language)
        found.update(country.items())
    return MappingProxyType(dict(sorted(found.items())))


class BusinessCalendar:
    """Working days of one holiday zone, with delay arithmetic.

    The calendar keeps a sorted list of the ordinals (``date.toordinal()``)
    of all working days over a contiguous range of years, and extends it on
    demand. Date arithmetic is then a bisection in that list. Instances are
    safe to share between threads.
    """

    def __init__(self, zone: str) -> None:
        self._zone = _validate_zone(zone)
        self._lock = threading.Lock()
        # Contiguous years covered by `_working_ordinals`. The list is replaced
        # as a whole on extension, never mutated, so readers need no lock.
        self._first_year = 0
        self._last_year = -1
        self._working_ordinals: list[int] = []

    @property
    def zone(self) -> str:
        """Zone id, one of the keys of `ZONES`."""
        return self._zone.id

    def __repr__(self) -> str:
        return f"BusinessCalendar({self._zone.id!r})"

    # Holiday lookup.

    def _holidays_of_year(self, year: int, language: str = "fr") -> Mapping[date, str]:
        return _zone_holidays(self._zone, year, language)

    def is_holiday(self, day: date) -> bool:
        """Tell whether `day` is a public holiday of the zone, whatever its weekday."""
        return day in self._holidays_of_year(day.year)

    def holidays_between(
        self, start: date, end: date, language: str = "fr"
    ) -> list[Holiday]:
        """List the public holidays from `start` to `end`, both included, in date order.

        `language` selects the holiday names, as in `holidays.France`
        ("fr", "en_US", "th" or "uk").
        """
        if end < start:
            raise ValueError(f"End date {end} is before start date {start}.")

        result: list[Holiday] = []
        for year in range(start.year, end.year + 1):
            for day, name in self._holidays_of_year(year, language).items():
                if start <= day <= end:
                    result.append(Holiday(day, name))
        return result

    # Working-day index.

    def _build_year(self, year: int) -> list[int]:
        holiday_dates = self._holidays_of_year(year)
        day = date(year, 1, 1)
        one_day = timedelta(days=1)
        ordinals: list[int] = []
        while day.year == year:
            if day.weekday() < 5 and day not in holiday_dates:
                ordinals.append(day.toordinal())
            day += one_day
        return ordinals

    def _cover_years(self, first_year: int, last_year: int) -> None:
        """Extend the working-day index so that it covers `first_year` to `last_year`."""
        first_year = max(first_year, _FIRST_SUPPORTED_YEAR)
        last_year = min(last_year, _LAST_SUPPORTED_YEAR)
        with self._lock:
            if not self._working_ordinals:
                new_first, new_last = first_year, last_year
            else:
                new_first = min(first_year, self._first_year)
                new_last = max(last_year, self._last_year)
                if new_first == self._first_year and new_last == self._last_year:
                    return

            ordinals: list[int] = []
            for year in range(new_first, new_last + 1):
                if self._first_year <= year <= self._last_year:
                    continue
                ordinals.extend(self._build_year(year))
            ordinals.extend(self._working_ordinals)
            ordinals.sort()

            logger.debug(
                "Working-day index of zone %s now covers %s-%s",
                self._zone.id,
                new_first,
                new_last,
            )
            self._working_ordinals = ordinals
            self._first_year = new_first
            self._last_year = new_last

    def _ensure_year(self, year: int) -> None:
        _validate_year(year)
        if not self._first_year <= year <= self._last_year:
            self._cover_years(year - 1, year + _YEARS_PER_EXTENSION - 1)

    def _ensure_years(self, first_year: int, last_year: int) -> None:
        _validate_year(first_year)
        _validate_year(last_year)
        if first_year < self._first_year or last_year > self._last_year:
            self._cover_years(first_year, last_year)

    # Public arithmetic.

    def is_working_day(self, day: date) -> bool:
        """Tell whether `day` is a Monday to Friday that is not a public holiday."""
        return day.weekday() < 5 and not self.is_holiday(day)

    def add_working_days(self, start: date, n: int) -> date:
        """Compute the Nth working day strictly after `start`.

        `start` itself is never counted, whatever kind of day it is. With
        ``n == 0`` the function returns `start` unchanged. A negative `n`
        gives the ``|n|``th working day strictly before `start`.
        """
        if n == 0:
            return start

        self._ensure_year(start.year)
        start_ordinal = start.toordinal()
        while True:
            ordinals = self._working_ordinals
            if n > 0:
                index = bisect.bisect_right(ordinals, start_ordinal) + n - 1
                if index < len(ordinals):
                    return date.fromordinal(ordinals[index])
                self._extend_after(n)
            else:
                index = bisect.bisect_left(ordinals, start_ordinal) + n
                if index >= 0:
                    return date.fromordinal(ordinals[index])
                self._extend_before(n)

    def _extend_after(self, n: int) -> None:
        if self._last_year >= _LAST_SUPPORTED_YEAR:
            raise ValueError(
                f"Adding {n} working days goes past year {_LAST_SUPPORTED_YEAR}."
            )
        # A year contains at least 240 working days, so this many more years
        # always reaches far enough, or the loop calls again.
        extra_years = n // 240 + 1
        self._cover_years(self._first_year, self._last_year + extra_years)

    def _extend_before(self, n: int) -> None:
        if self._first_year <= _FIRST_SUPPORTED_YEAR:
            raise ValueError(
                f"Subtracting {-n} working days goes before year {_FIRST_SUPPORTED_YEAR}."
            )
        extra_years = -n // 240 + 1
        self._cover_years(self._first_year - extra_years, self._last_year)

    def next_working_day(self, day: date) -> date:
        """Return the first working day strictly after `day`."""
        return self.add_working_days(day, 1)

    def count_working_days(self, start: date, end: date) -> int:
        """Count the working days strictly after `start`, up to and including `end`.

        When `end` is before `start` the result is the opposite of
        ``count_working_days(end, start)``, so it is negative or zero.
        """
        self._ensure_years(min(start.year, end.year), max(start.year, end.year))
        ordinals = self._working_ordinals
        after_end = bisect.bisect_right(ordinals, end.toordinal())
        after_start = bisect.bisect_right(ordinals, start.toordinal())
        return after_end - after_start


@functools.cache
def _calendar_for_zone(zone: str) -> BusinessCalendar:
    return BusinessCalendar(zone)


def get_calendar(zone: str) -> BusinessCalendar:
    """Return the shared calendar of `zone`, creating it on first use.

    Raises ValueError when `zone` is not a key of `ZONES`.
    """
    _validate_zone(zone)
    return _calendar_for_zone(str(zone))


def compute_due_date(received: date, days: int, unit: DelayUnit, zone: str) -> date:
    """Compute the due date of a delay of `days` days starting on the day of receipt.

    The day of receipt does not count. With ``unit="working"`` the due date is
    the Nth working day of `zone` after `received`. With ``unit="calendar"``
    it is the Nth calendar day after `received`, even when that day is a
    weekend or a public holiday.
    """
    if days < 0:
        raise ValueError(f"Delay must be zero or more days, got {days}.")

    if unit == "working":
        return get_calendar(zone).add_working_days(received, days)
    if unit == "calendar":
        _validate_zone(zone)
        return received + timedelta(days=days)
    raise ValueError(f"Unknown delay unit {unit!r}. Use 'working' or 'calendar'.")

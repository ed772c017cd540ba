"""Business calendar: working days, holiday zones and due dates.

Every expected date below was worked out by hand from a printed calendar
(``python -c "import calendar; print(calendar.month(2026, 11))"``) and the
list of French public holidays, not from the implementation's output.

Public holidays used here. 2026: Thu 1 Jan, Mon 6 Apr (Easter Monday),
Fri 1 May, Fri 8 May, Thu 14 May (Ascension), Mon 25 May (Whit Monday),
Tue 14 Jul, Sat 15 Aug, Sun 1 Nov, Wed 11 Nov, Fri 25 Dec. 2027: Fri 1 Jan,
Mon 29 Mar, Sat 1 May, Thu 6 May, Sat 8 May, Mon 17 May, Wed 14 Jul,
Sun 15 Aug, Mon 1 Nov, Thu 11 Nov, Sat 25 Dec. Alsace-Moselle adds Good
Friday (Fri 3 Apr 2026, Fri 26 Mar 2027) and 26 December.
"""

from datetime import date

import pytest

from app.deadlines.calendar import (
    ZONES,
    BusinessCalendar,
    CalendarZone,
    compute_due_date,
    get_calendar,
)

METROPOLE = "metropole"
ALSACE = "alsace_moselle"

# (zone, received, working days, expected due date)
ADD_WORKING_DAYS_CASES = [
    pytest.param(
        METROPOLE, date(2026, 11, 6), 3, date(2026, 11, 12), id="armistice-from-friday"
    ),
    pytest.param(
        METROPOLE,
        date(2026, 11, 7),
        3,
        date(2026, 11, 12),
        id="armistice-from-saturday",
    ),
    pytest.param(
        METROPOLE, date(2026, 11, 9), 3, date(2026, 11, 13), id="armistice-from-monday"
    ),
    pytest.param(
        METROPOLE, date(2026, 11, 10), 1, date(2026, 11, 12), id="armistice-skipped"
    ),
    pytest.param(
        METROPOLE, date(2026, 11, 11), 1, date(2026, 11, 12), id="start-on-armistice"
    ),
    pytest.param(
        METROPOLE, date(2026, 11, 2), 30, date(2026, 12, 15), id="thirty-days-november"
    ),
    pytest.param(
        METROPOLE, date(2026, 6, 5), 1, date(2026, 6, 8), id="friday-to-monday"
    ),
    pytest.param(
        METROPOLE, date(2026, 6, 6), 1, date(2026, 6, 8), id="saturday-to-monday"
    ),
    pytest.param(
        METROPOLE, date(2026, 6, 7), 1, date(2026, 6, 8), id="sunday-to-monday"
    ),
    pytest.param(
        METROPOLE, date(2026, 6, 7), 5, date(2026, 6, 12), id="sunday-plus-five"
    ),
    pytest.param(
        METROPOLE, date(2026, 6, 1), 10, date(2026, 6, 15), id="two-weeks-june"
    ),
    pytest.param(
        METROPOLE, date(2026, 4, 3), 1, date(2026, 4, 7), id="easter-monday-2026"
    ),
    pytest.param(
        METROPOLE, date(2026, 4, 2), 2, date(2026, 4, 7), id="good-friday-worked"
    ),
    pytest.param(
        ALSACE, date(2026, 4, 2), 1, date(2026, 4, 7), id="alsace-good-friday-2026"
    ),
    pytest.param(
        ALSACE, date(2026, 4, 2), 2, date(2026, 4, 8), id="alsace-easter-2026"
    ),
    pytest.param(
        METROPOLE, date(2026, 4, 30), 1, date(2026, 5, 4), id="labour-day-friday"
    ),
    pytest.param(
        METROPOLE, date(2026, 5, 7), 1, date(2026, 5, 11), id="victory-day-friday"
    ),
    pytest.param(
        METROPOLE, date(2026, 5, 13), 1, date(2026, 5, 15), id="ascension-2026"
    ),
    pytest.param(
        METROPOLE, date(2026, 5, 12), 3, date(2026, 5, 18), id="ascension-2026-three"
    ),
    pytest.param(
        METROPOLE, date(2026, 5, 22), 1, date(2026, 5, 26), id="whit-monday-2026"
    ),
    pytest.param(
        METROPOLE, date(2026, 5, 25), 1, date(2026, 5, 26), id="start-on-whit-monday"
    ),
    pytest.param(
        METROPOLE, date(2026, 7, 13), 1, date(2026, 7, 15), id="national-day-2026"
    ),
    pytest.param(
        METROPOLE,
        date(2026, 7, 10),
        2,
        date(2026, 7, 15),
        id="national-day-from-friday",
    ),
    pytest.param(
        METROPOLE, date(2026, 7, 14), 1, date(2026, 7, 15), id="start-on-national-day"
    ),
    pytest.param(
        METROPOLE, date(2026, 12, 23), 5, date(2026, 12, 31), id="christmas-2026"
    ),
    pytest.param(
        METROPOLE, date(2026, 12, 23), 7, date(2027, 1, 5), id="across-new-year"
    ),
    pytest.param(
        METROPOLE, date(2026, 12, 31), 1, date(2027, 1, 4), id="new-year-friday"
    ),
    pytest.param(
        METROPOLE, date(2027, 3, 25), 1, date(2027, 3, 26), id="good-friday-2027-worked"
    ),
    pytest.param(
        ALSACE, date(2027, 3, 25), 1, date(2027, 3, 30), id="alsace-good-friday-2027"
    ),
    pytest.param(
        METROPOLE, date(2027, 3, 26), 1, date(2027, 3, 30), id="easter-monday-2027"
    ),
    pytest.param(METROPOLE, date(2027, 5, 5), 1, date(2027, 5, 7), id="ascension-2027"),
    pytest.param(METROPOLE, date(2027, 4, 29), 5, date(2027, 5, 7), id="may-2027-week"),
    pytest.param(
        METROPOLE, date(2027, 5, 14), 1, date(2027, 5, 18), id="whit-monday-2027"
    ),
    pytest.param(
        METROPOLE, date(2027, 7, 13), 1, date(2027, 7, 15), id="national-day-2027"
    ),
    pytest.param(
        METROPOLE, date(2027, 10, 29), 1, date(2027, 11, 2), id="all-saints-2027"
    ),
    pytest.param(
        METROPOLE, date(2027, 11, 10), 1, date(2027, 11, 12), id="armistice-2027"
    ),
    pytest.param(
        METROPOLE, date(2028, 12, 22), 1, date(2028, 12, 26), id="christmas-2028"
    ),
    pytest.param(
        ALSACE, date(2028, 12, 22), 1, date(2028, 12, 27), id="alsace-st-stephen-2028"
    ),
    pytest.param(
        METROPOLE, date(2026, 5, 21), 1, date(2026, 5, 22), id="may-22-worked"
    ),
    pytest.param(
        "martinique", date(2026, 5, 21), 1, date(2026, 5, 26), id="martinique-abolition"
    ),
    pytest.param(
        "guadeloupe", date(2026, 5, 26), 1, date(2026, 5, 28), id="guadeloupe-abolition"
    ),
    pytest.param(
        "guyane", date(2026, 6, 9), 1, date(2026, 6, 11), id="guyane-abolition"
    ),
    pytest.param(
        "mayotte", date(2026, 4, 24), 1, date(2026, 4, 28), id="mayotte-abolition"
    ),
    pytest.param(
        "la_reunion", date(2027, 12, 17), 1, date(2027, 12, 21), id="reunion-abolition"
    ),
    pytest.param(METROPOLE, date(2026, 11, 7), 0, date(2026, 11, 7), id="zero-days"),
    pytest.param(
        METROPOLE, date(2026, 11, 9), -1, date(2026, 11, 6), id="minus-one-from-monday"
    ),
    pytest.param(
        METROPOLE,
        date(2026, 11, 12),
        -1,
        date(2026, 11, 10),
        id="minus-one-over-holiday",
    ),
]


@pytest.mark.parametrize(
    ("zone", "received", "days", "expected"), ADD_WORKING_DAYS_CASES
)
def test_add_working_days_reference(
    zone: str, received: date, days: int, expected: date
) -> None:
    assert get_calendar(zone).add_working_days(received, days) == expected


@pytest.mark.parametrize(
    ("received", "days", "expected"),
    [
        pytest.param(date(2026, 11, 6), 3, date(2026, 11, 9), id="friday-plus-three"),
        pytest.param(date(2026, 11, 10), 1, date(2026, 11, 11), id="lands-on-holiday"),
        pytest.param(date(2026, 12, 4), 30, date(2027, 1, 3), id="lands-on-sunday"),
        pytest.param(date(2026, 11, 7), 0, date(2026, 11, 7), id="zero-days"),
    ],
)
def test_due_date_calendar_days(received: date, days: int, expected: date) -> None:
    assert compute_due_date(received, days, "calendar", METROPOLE) == expected


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        pytest.param(date(2026, 11, 6), date(2026, 11, 12), id="from-friday"),
        pytest.param(date(2026, 11, 7), date(2026, 11, 12), id="from-saturday"),
        pytest.param(date(2026, 11, 9), date(2026, 11, 13), id="from-monday"),
    ],
)
def test_due_date_working_days(received: date, expected: date) -> None:
    assert compute_due_date(received, 3, "working", METROPOLE) == expected


def test_due_date_working_uses_zone() -> None:
    assert compute_due_date(date(2026, 4, 2), 1, "working", ALSACE) == date(2026, 4, 7)


def test_due_date_negative_delay() -> None:
    with pytest.raises(ValueError, match="-1"):
        compute_due_date(date(2026, 11, 6), -1, "working", METROPOLE)


def test_due_date_unknown_unit() -> None:
    with pytest.raises(ValueError, match="'weeks'"):
        compute_due_date(date(2026, 11, 6), 3, "weeks", METROPOLE)  # type: ignore[arg-type]


def test_due_date_unknown_zone_calendar_unit() -> None:
    with pytest.raises(ValueError, match="'corse'"):
        compute_due_date(date(2026, 11, 6), 3, "calendar", "corse")


@pytest.mark.parametrize(
    ("zone", "start", "end", "expected"),
    [
        pytest.param(
            METROPOLE, date(2026, 11, 6), date(2026, 11, 12), 3, id="over-armistice"
        ),
        pytest.param(
            METROPOLE, date(2026, 11, 7), date(2026, 11, 13), 4, id="from-saturday"
        ),
        pytest.param(
            METROPOLE, date(2026, 11, 12), date(2026, 11, 12), 0, id="same-day"
        ),
        pytest.param(
            METROPOLE, date(2026, 11, 10), date(2026, 11, 11), 0, id="end-on-holiday"
        ),
        pytest.param(
            METROPOLE, date(2026, 12, 31), date(2027, 1, 5), 2, id="across-new-year"
        ),
        pytest.param(
            METROPOLE, date(2026, 4, 1), date(2026, 4, 7), 3, id="easter-metropole"
        ),
        pytest.param(ALSACE, date(2026, 4, 1), date(2026, 4, 7), 2, id="easter-alsace"),
        pytest.param(
            METROPOLE, date(2026, 11, 12), date(2026, 11, 6), -3, id="end-before-start"
        ),
        pytest.param(
            METROPOLE, date(2026, 11, 2), date(2026, 12, 15), 30, id="thirty-days"
        ),
    ],
)
def test_count_working_days_reference(
    zone: str, start: date, end: date, expected: int
) -> None:
    assert get_calendar(zone).count_working_days(start, end) == expected


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        pytest.param(
            METROPOLE, date(2026, 12, 24), date(2026, 12, 28), id="christmas-friday"
        ),
        pytest.param(
            METROPOLE, date(2026, 7, 13), date(2026, 7, 15), id="national-day"
        ),
        pytest.param(
            METROPOLE, date(2026, 12, 30), date(2026, 12, 31), id="plain-weekday"
        ),
        pytest.param(METROPOLE, date(2027, 1, 2), date(2027, 1, 4), id="saturday"),
        pytest.param(ALSACE, date(2026, 4, 2), date(2026, 4, 7), id="alsace-easter"),
    ],
)
def test_next_working_day_reference(zone: str, day: date, expected: date) -> None:
    assert get_calendar(zone).next_working_day(day) == expected


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        pytest.param(METROPOLE, date(2026, 7, 14), False, id="national-day"),
        pytest.param(METROPOLE, date(2026, 7, 15), True, id="wednesday"),
        pytest.param(METROPOLE, date(2026, 11, 7), False, id="saturday"),
        pytest.param(METROPOLE, date(2026, 11, 8), False, id="sunday"),
        pytest.param(METROPOLE, date(2026, 4, 3), True, id="good-friday-metropole"),
        pytest.param(ALSACE, date(2026, 4, 3), False, id="good-friday-alsace"),
        pytest.param("la_reunion", date(2027, 12, 20), False, id="reunion-abolition"),
        pytest.param(METROPOLE, date(2027, 12, 20), True, id="december-20-metropole"),
    ],
)
def test_is_working_day_reference(zone: str, day: date, expected: bool) -> None:
    assert get_calendar(zone).is_working_day(day) is expected


def test_st_stephen_holiday_alsace_only() -> None:
    saturday = date(2026, 12, 26)

    assert get_calendar(ALSACE).is_holiday(saturday)
    assert not get_calendar(METROPOLE).is_holiday(saturday)


def test_holidays_between_december_metropole() -> None:
    found = get_calendar(METROPOLE).holidays_between(
        date(2026, 12, 1), date(2026, 12, 31)
    )

    assert [holiday.date for holiday in found] == [date(2026, 12, 25)]


def test_holidays_between_december_alsace() -> None:
    found = get_calendar(ALSACE).holidays_between(date(2026, 12, 1), date(2026, 12, 31))

    assert [holiday.date for holiday in found] == [
        date(2026, 12, 25),
        date(2026, 12, 26),
    ]


def test_holidays_between_across_years() -> None:
    found = get_calendar(METROPOLE).holidays_between(
        date(2026, 12, 25), date(2027, 1, 1)
    )

    assert [holiday.date for holiday in found] == [date(2026, 12, 25), date(2027, 1, 1)]


def test_holidays_between_whole_year() -> None:
    found = get_calendar(METROPOLE).holidays_between(
        date(2026, 1, 1), date(2026, 12, 31)
    )

    assert len(found) == 11


def test_holidays_between_french_names() -> None:
    found = get_calendar(METROPOLE).holidays_between(
        date(2026, 7, 14), date(2026, 7, 14)
    )

    assert found[0].name == "Fête nationale"


def test_holidays_between_reversed_range() -> None:
    with pytest.raises(ValueError, match="before start"):
        get_calendar(METROPOLE).holidays_between(date(2026, 12, 31), date(2026, 1, 1))


def test_get_calendar_unknown_zone() -> None:
    with pytest.raises(ValueError, match="'corse'") as error:
        get_calendar("corse")

    assert "metropole" in str(error.value)


def test_get_calendar_returns_shared_instance() -> None:
    assert get_calendar(METROPOLE) is get_calendar(METROPOLE)


def test_get_calendar_accepts_enum() -> None:
    assert get_calendar(CalendarZone.ALSACE_MOSELLE) is get_calendar(ALSACE)


def test_business_calendar_unknown_zone() -> None:
    with pytest.raises(ValueError, match="'alsace'"):
        BusinessCalendar("alsace")


def test_zones_list_all_ids() -> None:
    assert set(ZONES) == {zone.value for zone in CalendarZone}


@pytest.mark.parametrize("zone_id", list(ZONES))
def test_zones_have_labels(zone_id: str) -> None:
    zone = ZONES[zone_id]

    assert zone.id == zone_id
    assert zone.label_fr
    assert zone.label_en


def test_add_working_days_round_trip_count() -> None:
    calendar = BusinessCalendar(METROPOLE)
    start = date(2026, 3, 17)

    due = calendar.add_working_days(start, 600)

    assert calendar.count_working_days(start, due) == 600


def test_add_working_days_far_back() -> None:
    # A fresh calendar forces the index to grow towards earlier years.
    calendar = BusinessCalendar(METROPOLE)
    start = date(2026, 3, 17)

    earlier = calendar.add_working_days(start, -600)

    assert calendar.count_working_days(earlier, start) == 600

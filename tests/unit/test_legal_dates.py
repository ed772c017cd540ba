"""Implicit decision dates under the CRPA: month rule, regimes, missing documents.

Expected dates were worked out by hand with a printed calendar. 2028 is a
leap year, 2027 is not. Saturday 16 May 2026 and Tuesday 14 July 2026 check
that a decision falling on a weekend or a public holiday is not moved.
"""

from datetime import date

import pytest

from app.deadlines.legal import (
    MissingDocumentsRequest,
    SilenceRegime,
    add_months,
    implicit_decision_date,
)


@pytest.mark.parametrize(
    ("received", "months", "expected"),
    [
        pytest.param(date(2026, 3, 15), 2, date(2026, 5, 15), id="same-day-number"),
        pytest.param(date(2026, 12, 31), 2, date(2027, 2, 28), id="dec-31-to-february"),
        pytest.param(
            date(2027, 12, 31), 2, date(2028, 2, 29), id="dec-31-to-leap-february"
        ),
        pytest.param(date(2028, 1, 31), 1, date(2028, 2, 29), id="jan-31-leap-year"),
        pytest.param(date(2027, 1, 31), 1, date(2027, 2, 28), id="jan-31-common-year"),
        pytest.param(
            date(2026, 11, 30), 3, date(2027, 2, 28), id="nov-30-three-months"
        ),
        pytest.param(date(2026, 3, 31), 1, date(2026, 4, 30), id="mar-31-to-april"),
        pytest.param(date(2026, 3, 31), 2, date(2026, 5, 31), id="mar-31-to-may"),
        pytest.param(date(2026, 8, 31), 1, date(2026, 9, 30), id="aug-31-to-september"),
        pytest.param(date(2026, 11, 15), 2, date(2027, 1, 15), id="across-new-year"),
        pytest.param(date(2028, 2, 29), 12, date(2029, 2, 28), id="leap-day-plus-year"),
        pytest.param(date(2026, 5, 10), 0, date(2026, 5, 10), id="zero-months"),
    ],
)
def test_add_months_reference(received: date, months: int, expected: date) -> None:
    assert add_months(received, months) == expected


def test_add_months_negative() -> None:
    with pytest.raises(ValueError, match="-1"):
        add_months(date(2026, 3, 15), -1)


@pytest.mark.parametrize("regime", ["acceptance", "rejection"])
@pytest.mark.parametrize(
    ("received", "months", "expected"),
    [
        pytest.param(date(2026, 3, 15), 2, date(2026, 5, 15), id="two-months"),
        pytest.param(
            date(2026, 12, 31), 2, date(2027, 2, 28), id="two-months-month-end"
        ),
        pytest.param(date(2026, 2, 10), 1, date(2026, 3, 10), id="one-month"),
        pytest.param(date(2028, 1, 31), 1, date(2028, 2, 29), id="one-month-leap"),
        pytest.param(date(2026, 3, 16), 2, date(2026, 5, 16), id="saturday-not-moved"),
        pytest.param(date(2026, 5, 14), 2, date(2026, 7, 14), id="holiday-not-moved"),
    ],
)
def test_decision_date_months(
    regime: str, received: date, months: int, expected: date
) -> None:
    assert implicit_decision_date(received, regime, months=months) == expected


def test_decision_date_default_two_months() -> None:
    assert implicit_decision_date(date(2026, 3, 15), "acceptance") == date(2026, 5, 15)


def test_decision_date_in_days() -> None:
    result = implicit_decision_date(date(2026, 11, 6), "rejection", days=15)

    assert result == date(2026, 11, 21)


def test_decision_date_accepts_enum() -> None:
    result = implicit_decision_date(date(2026, 3, 15), SilenceRegime.REJECTION)

    assert result == date(2026, 5, 15)


def test_none_regime_returns_none() -> None:
    assert implicit_decision_date(date(2026, 3, 15), "none") is None


def test_none_regime_with_missing_documents() -> None:
    request = MissingDocumentsRequest(date(2026, 3, 20), date(2026, 4, 20), None)

    assert (
        implicit_decision_date(date(2026, 3, 15), "none", missing_documents=[request])
        is None
    )


# Acceptance: the delay restarts in full when the missing documents arrive.
RECEIVED = date(2026, 3, 2)  # Monday; two months expire on Saturday 2 May 2026.


def test_acceptance_restarts_from_documents() -> None:
    request = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 3, 20)
    )

    result = implicit_decision_date(RECEIVED, "acceptance", missing_documents=[request])

    assert result == date(2026, 5, 20)


def test_acceptance_documents_missing() -> None:
    request = MissingDocumentsRequest(date(2026, 3, 10), date(2026, 4, 10), None)

    assert (
        implicit_decision_date(RECEIVED, "acceptance", missing_documents=[request])
        is None
    )


def test_acceptance_documents_after_deadline() -> None:
    request = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 4, 15)
    )

    result = implicit_decision_date(RECEIVED, "acceptance", missing_documents=[request])

    assert result == date(2026, 6, 15)


def test_acceptance_request_after_expiry_ignored() -> None:
    request = MissingDocumentsRequest(date(2026, 5, 5), date(2026, 6, 5), None)

    result = implicit_decision_date(RECEIVED, "acceptance", missing_documents=[request])

    assert result == date(2026, 5, 2)


def test_acceptance_request_on_expiry_day() -> None:
    request = MissingDocumentsRequest(
        date(2026, 5, 2), date(2026, 6, 2), date(2026, 5, 10)
    )

    result = implicit_decision_date(RECEIVED, "acceptance", missing_documents=[request])

    assert result == date(2026, 7, 10)


def test_acceptance_two_requests_last_restart() -> None:
    first = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 3, 20)
    )
    second = MissingDocumentsRequest(
        date(2026, 4, 1), date(2026, 5, 1), date(2026, 4, 12)
    )

    result = implicit_decision_date(
        RECEIVED, "acceptance", missing_documents=[second, first]
    )

    assert result == date(2026, 6, 12)


def test_acceptance_second_request_pending() -> None:
    first = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 3, 20)
    )
    second = MissingDocumentsRequest(date(2026, 4, 1), date(2026, 5, 1), None)

    result = implicit_decision_date(
        RECEIVED, "acceptance", missing_documents=[first, second]
    )

    assert result is None


# Rejection: the delay is suspended, then resumes for the remaining time.


def test_rejection_suspended_until_documents() -> None:
    # Suspended from 11 to 20 March included: 10 days.
    request = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 3, 20)
    )

    result = implicit_decision_date(RECEIVED, "rejection", missing_documents=[request])

    assert result == date(2026, 5, 12)


def test_rejection_suspended_until_deadline() -> None:
    # Documents never arrive: suspended from 11 March to 10 April included, 31 days.
    request = MissingDocumentsRequest(date(2026, 3, 10), date(2026, 4, 10), None)

    result = implicit_decision_date(RECEIVED, "rejection", missing_documents=[request])

    assert result == date(2026, 6, 2)


def test_rejection_documents_after_deadline() -> None:
    request = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 4, 20)
    )

    result = implicit_decision_date(RECEIVED, "rejection", missing_documents=[request])

    assert result == date(2026, 6, 2)


def test_rejection_documents_same_day() -> None:
    request = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 3, 10)
    )

    result = implicit_decision_date(RECEIVED, "rejection", missing_documents=[request])

    assert result == date(2026, 5, 2)


def test_rejection_request_after_expiry_ignored() -> None:
    request = MissingDocumentsRequest(date(2026, 5, 4), date(2026, 6, 4), None)

    result = implicit_decision_date(RECEIVED, "rejection", missing_documents=[request])

    assert result == date(2026, 5, 2)


def test_rejection_overlapping_suspensions() -> None:
    # 11-20 March and 16-25 March overlap: 11-25 March, 15 days.
    first = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 3, 20)
    )
    second = MissingDocumentsRequest(
        date(2026, 3, 15), date(2026, 3, 30), date(2026, 3, 25)
    )

    result = implicit_decision_date(
        RECEIVED, "rejection", missing_documents=[second, first]
    )

    assert result == date(2026, 5, 17)


def test_rejection_separate_suspensions() -> None:
    # 11-20 March (10 days) and 2-6 April (5 days).
    first = MissingDocumentsRequest(
        date(2026, 3, 10), date(2026, 4, 10), date(2026, 3, 20)
    )
    second = MissingDocumentsRequest(
        date(2026, 4, 1), date(2026, 5, 1), date(2026, 4, 6)
    )

    result = implicit_decision_date(
        RECEIVED, "rejection", missing_documents=[first, second]
    )

    assert result == date(2026, 5, 17)


def test_rejection_suspension_delay_in_days() -> None:
    request = MissingDocumentsRequest(
        date(2026, 11, 10), date(2026, 11, 30), date(2026, 11, 13)
    )

    result = implicit_decision_date(
        date(2026, 11, 6), "rejection", days=30, missing_documents=[request]
    )

    assert result == date(2026, 12, 9)


def test_rejection_suspension_after_month_end() -> None:
    # Two months from 31 December 2026 give 28 February 2027, plus 3 days.
    request = MissingDocumentsRequest(
        date(2027, 1, 5), date(2027, 1, 20), date(2027, 1, 8)
    )

    result = implicit_decision_date(
        date(2026, 12, 31), "rejection", missing_documents=[request]
    )

    assert result == date(2027, 3, 3)


# Invalid input.


def test_unknown_regime() -> None:
    with pytest.raises(ValueError, match="'silence'"):
        implicit_decision_date(date(2026, 3, 15), "silence")


@pytest.mark.parametrize(
    ("months", "days"),
    [
        pytest.param(0, None, id="zero-months"),
        pytest.param(-1, None, id="negative-months"),
        pytest.param(2, 0, id="zero-days"),
        pytest.param(2, -5, id="negative-days"),
    ],
)
def test_invalid_delay(months: int, days: int | None) -> None:
    with pytest.raises(ValueError, match="Delay"):
        implicit_decision_date(
            date(2026, 3, 15), "acceptance", months=months, days=days
        )


@pytest.mark.parametrize(
    "request_record",
    [
        pytest.param(
            MissingDocumentsRequest(date(2026, 2, 1), date(2026, 4, 1), None),
            id="requested-before-receipt",
        ),
        pytest.param(
            MissingDocumentsRequest(date(2026, 3, 20), date(2026, 3, 19), None),
            id="deadline-before-request",
        ),
        pytest.param(
            MissingDocumentsRequest(
                date(2026, 3, 20), date(2026, 4, 20), date(2026, 3, 19)
            ),
            id="documents-before-request",
        ),
    ],
)
def test_invalid_missing_documents(request_record: MissingDocumentsRequest) -> None:
    with pytest.raises(ValueError, match="before"):
        implicit_decision_date(
            date(2026, 3, 15), "rejection", missing_documents=[request_record]
        )

"""Dates of implicit decisions under the French CRPA.

The Code des relations entre le public et l'administration (CRPA) turns the
administration's silence on a request into a decision once a delay has run:

* ``acceptance``: silence means acceptance (article L231-1), after two months
  unless a text sets another delay.
* ``rejection``: silence means rejection, where a text excludes the
  acceptance rule.
* ``none``: no implicit decision is born from silence.

Delay computation follows article 641 of the Code de procedure civile, in
the version in force since 1 January 1976:

* A delay in months runs from the day after receipt and expires on the day of
  the last month that has the same day number as the day of receipt. When
  that month has no such day, the delay expires on the last day of the month.
  Received 15 March with 2 months gives 15 May, and received 31 December with
  2 months gives 28 February (29 February in a leap year).
* A delay in days does not count the day of receipt, so it expires on the Nth
  calendar day after receipt.

The implicit decision is born on the expiry date whatever kind of day it is.
This module never moves it to the next working day when it falls on a
Saturday, a Sunday or a public holiday. The extension of article 642 of the
Code de procedure civile applies to acts that a party must perform before a
deadline, not to the birth of an implicit decision.

Incomplete requests (article L114-5 of the CRPA, whose wording comes from
article 2 of decree 2001-492 of 6 June 2001) are described by
`MissingDocumentsRequest` records. See `implicit_decision_date` for how they
restart or suspend the delay.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


class SilenceRegime(enum.StrEnum):
    """Effect of the administration's silence on a request."""

    NONE = "none"
    ACCEPTANCE = "acceptance"
    REJECTION = "rejection"


REGIMES: tuple[str, ...] = tuple(regime.value for regime in SilenceRegime)


@dataclass(frozen=True)
class MissingDocumentsRequest:
    """Request for missing documents sent to the applicant (CRPA article L114-5).

    `requested_on` is the day the administration sent the request, `deadline`
    the last day it gave the applicant to produce the documents, and
    `received_on` the day the documents arrived, or None while they are missing.
    """

    requested_on: date
    deadline: date
    received_on: date | None = None


def add_months(start: date, months: int) -> date:
    """Compute the expiry date of a delay of `months` months that starts on `start`.

    The result has the day number of `start`, or is the last day of the
    target month when that month is shorter (article 641 of the Code de
    procedure civile).
    """
    if months < 0:
        raise ValueError(f"Delay must be zero or more months, got {months}.")

    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last_day))


@dataclass(frozen=True)
class _Delay:
    months: int
    days: int | None

    def expiry_from(self, start: date) -> date:
        if self.days is not None:
            return start + timedelta(days=self.days)
        return add_months(start, self.months)


def _parse_regime(regime: str) -> SilenceRegime:
    try:
        return SilenceRegime(regime)
    except ValueError:
        valid = ", ".join(REGIMES)
        raise ValueError(
            f"Unknown silence regime {regime!r}. Use one of: {valid}."
        ) from None


def _validate_delay(months: int, days: int | None) -> _Delay:
    if days is not None:
        if days < 1:
            raise ValueError(f"Delay in days must be 1 or more, got {days}.")
        return _Delay(months=0, days=days)
    if months < 1:
        raise ValueError(f"Delay in months must be 1 or more, got {months}.")
    return _Delay(months=months, days=None)


def _validate_requests(
    received: date, requests: Sequence[MissingDocumentsRequest]
) -> list[MissingDocumentsRequest]:
    for request in requests:
        if request.requested_on < received:
            raise ValueError(
                f"Missing documents requested on {request.requested_on}, "
                f"before the request itself was received on {received}."
            )
        if request.deadline < request.requested_on:
            raise ValueError(
                f"Deadline {request.deadline} for missing documents is before "
                f"the day they were requested, {request.requested_on}."
            )
        if (
            request.received_on is not None
            and request.received_on < request.requested_on
        ):
            raise ValueError(
                f"Missing documents received on {request.received_on}, before "
                f"the day they were requested, {request.requested_on}."
            )
    return sorted(requests, key=lambda request: request.requested_on)


def _acceptance_date(
    received: date, delay: _Delay, requests: list[MissingDocumentsRequest]
) -> date | None:
    """Restart the delay in full from the arrival of the last missing documents.

    A request sent after the delay has expired does not change the result,
    because the implicit acceptance is already born. While the documents of
    an effective request are missing, no acceptance can be born.
    """
    start = received
    for request in requests:
        # NOTE: a request sent on the expiry day itself still counts, because
        # the administration can act until the end of that day.
        if request.requested_on > delay.expiry_from(start):
            break
        if request.received_on is None:
            return None
        start = max(start, request.received_on)
    return delay.expiry_from(start)


def _rejection_date(
    received: date, delay: _Delay, requests: list[MissingDocumentsRequest]
) -> date:
    """Suspend the delay while missing documents are awaited, then resume it.

    Each suspension ends on the day the documents arrive or, when they arrive
    late or never, on the deadline given to produce them. The number of
    suspended days is the number of calendar days strictly after the request
    day, up to and including that end day. The request day is therefore
    counted in the delay, and the delay resumes the day after the suspension
    ends, as when it first started the day after receipt. The expiry date is
    moved later by that number of calendar days, including for delays in
    months. Overlapping suspensions count each calendar day once.
    """
    expiry = delay.expiry_from(received)
    suspended_until = received
    for request in requests:
        if request.requested_on > expiry:
            break

        end = request.deadline
        if request.received_on is not None and request.received_on < end:
            end = request.received_on

        suspension_start = max(request.requested_on, suspended_until)
        if end > suspension_start:
            expiry += end - suspension_start
            suspended_until = end
    return expiry


def implicit_decision_date(
    received: date,
    regime: str,
    months: int = 2,
    days: int | None = None,
    missing_documents: Sequence[MissingDocumentsRequest] = (),
) -> date | None:
    """Compute the date on which the administration's silence becomes a decision.

    `received` is the day the administration received the request. The delay
    is `months` months, or `days` calendar days when `days` is given (then
    `months` is not used).

    `missing_documents` lists the requests for missing documents sent to the
    applicant (CRPA article L114-5), in any order:

    * ``acceptance``: the delay starts again in full from the day the last
      missing documents are received. The function returns None while the
      documents of a request are still missing.
    * ``rejection``: the delay is suspended from the request until the
      documents arrive or the deadline to produce them passes, whichever
      comes first, then runs for the remaining time.

    A request sent after the delay has expired is ignored. The result is not
    moved when it falls on a weekend or a public holiday.

    Returns None for the ``none`` regime. Raises ValueError for an unknown
    regime, a delay below 1, or inconsistent missing-documents dates.
    """
    silence_regime = _parse_regime(regime)
    delay = _validate_delay(months, days)
    requests = _validate_requests(received, missing_documents)

    if silence_regime is SilenceRegime.NONE:
        return None
    if silence_regime is SilenceRegime.ACCEPTANCE:
        return _acceptance_date(received, delay, requests)
    return _rejection_date(received, delay, requests)

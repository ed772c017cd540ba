"""The scheduled jobs of search: index the changes waiting in the outbox, read scanned attachments by OCR.

Every ORM write to indexed data queues an outbox row in its own transaction
(app/search/outbox.py). The scheduler's lease holder runs these jobs on each
pass, so the index catches up whatever wrote the row: an action, a scheduled
reminder, a bulk operation or an import. Each job starts no new batch once
its time budget for the pass is spent (a batch under way still finishes), so
a large backlog does not keep the pass, and the lease, for long: the next
pass goes on where it stopped.
"""

from __future__ import annotations

import time
from datetime import datetime

from flask import current_app

from app.search.backends import BackendUnavailable, configured_backend
from app.search.indexer import DrainResult, drain, run_ocr

# Share of the scheduler interval that one job may spend per pass, and its bounds in seconds.
BUDGET_SHARE = 0.5
MIN_BUDGET_SECONDS = 5.0
MAX_BUDGET_SECONDS = 120.0


def _budget_seconds() -> float:
    interval = float(current_app.config["SCHEDULER_INTERVAL_SECONDS"])
    return min(max(interval * BUDGET_SHARE, MIN_BUDGET_SECONDS), MAX_BUDGET_SECONDS)


def _raise_if_failed(result: DrainResult, backend_name: str) -> None:
    # Raising records the run as failed on /scheduler/; the changes stay in the outbox for the next pass.
    if result.failed:
        raise BackendUnavailable(f"the {backend_name} search backend is unavailable: {result.indexed} mails indexed "
                                 "before it failed, the other changes stay in the outbox")


def index_pending_changes(now: datetime) -> dict[str, int]:
    """Index the mails whose changes wait in the outbox, batch by batch, within the time budget."""
    backend = configured_backend()
    deadline = time.monotonic() + _budget_seconds()
    total = DrainResult()
    while time.monotonic() < deadline:
        result = drain(backend, max_batches=1, ocr=False)
        total += result
        _raise_if_failed(total, backend.name)
        if result.indexed == 0 and result.deleted == 0:
            break
    return {"indexed": total.indexed, "deleted": total.deleted}


def recognise_scanned_attachments(now: datetime) -> dict[str, int]:
    """Read scanned attachments by OCR and index their mails again, within the time budget."""
    backend = configured_backend()
    deadline = time.monotonic() + _budget_seconds()
    total = DrainResult()
    while time.monotonic() < deadline:
        result = run_ocr(backend)
        total += result
        _raise_if_failed(total, backend.name)
        if result.recognised == 0:
            break
    return {"recognised": total.recognised, "indexed": total.indexed}

"""A lease row in the database: the one process holding it runs the scheduled jobs.

Acquiring and renewing are one conditional UPDATE (or an INSERT for the first
holder), so the database decides between processes on SQLite and PostgreSQL
alike. A holder that stops renewing loses the lease when it expires.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.core.db import run_in_write_transaction
from app.extensions import db
from app.scheduler.models import SchedulerLease

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"


def new_holder_id() -> str:
    """Return an id unique to this process and this runner: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _take(name: str, holder: str, now: datetime, seconds: int) -> bool:
    expires = now + timedelta(seconds=seconds)
    result = db.session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
        .values(
            acquired_at=case((SchedulerLease.holder == holder, SchedulerLease.acquired_at), else_=now),
            holder=holder,
            renewed_at=now,
            expires_at=expires,
        )
    )
    if result.rowcount == 1:
        return True
    if db.session.execute(select(SchedulerLease.name).where(SchedulerLease.name == name)).first() is not None:
        return False
    db.session.add(SchedulerLease(name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=expires))
    db.session.flush()
    return True


def acquire(holder: str, now: datetime, seconds: int, name: str = LEASE_NAME) -> bool:
    """Take or renew the lease for ``seconds``; return False while another holder's lease runs."""
    try:
        held = run_in_write_transaction(lambda: _take(name, holder, now, seconds), f"acquire lease {name}")
    except IntegrityError:
        # Another process inserted the first lease row at the same moment.
        db.session.rollback()
        return False
    return held


def release(holder: str, now: datetime, name: str = LEASE_NAME) -> None:
    """Let the lease expire now if ``holder`` has it, so another process can take over at once."""
    run_in_write_transaction(
        lambda: db.session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
            .values(expires_at=now)
        ),
        f"release lease {name}",
    )


def current_lease(name: str = LEASE_NAME) -> SchedulerLease | None:
    return db.session.get(SchedulerLease, name)

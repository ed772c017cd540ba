"""Autovacuum keeps the visibility map of the mail table fresh (migration 0019).

The baskets count their mail by index-only scans, which read the table row
of every page the visibility map does not mark all-visible. PostgreSQL's
defaults wait for a fifth of the table to change before vacuuming it. The
migration has the mail table vacuumed after every thousand inserted or
changed rows, whatever its size.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.extensions import db


def test_mail_autovacuum_thresholds(app_context):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no autovacuum and no visibility map")
    options = db.session.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'mail'")).scalar_one()
    assert sorted(options or []) == [
        "autovacuum_vacuum_insert_scale_factor=0",
        "autovacuum_vacuum_insert_threshold=1000",
        "autovacuum_vacuum_scale_factor=0",
        "autovacuum_vacuum_threshold=1000",
    ]

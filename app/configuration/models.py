"""Stored versions of the applied schema files."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import JsonDocument, UTCDateTime, utcnow


class SchemaVersion(Model):
    """One applied set of schema files; mail and history refer to its number."""

    __tablename__ = "schema_version"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    checksum: Mapped[str] = mapped_column(String(64), nullable=False)
    format_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # {relative file name: text} of every file of the set.
    files: Mapped[dict[str, Any]] = mapped_column(JsonDocument, nullable=False)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    applied_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)

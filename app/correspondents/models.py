"""The directory of correspondents: people and organisations."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.types import UTCDateTime, utcnow

KINDS = ("person", "organisation")


class Correspondent(Model):
    """A sender or recipient, shown exactly as entered; matching uses the keys."""

    __tablename__ = "correspondent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="person")
    civility: Mapped[str | None] = mapped_column(String(20))
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    organisation: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(12))
    city: Mapped[str | None] = mapped_column(String(120))
    # Accent-, case- and punctuation-folded forms used to find and match entries.
    name_key: Mapped[str] = mapped_column(String(400), nullable=False, index=True)
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    phone_key: Mapped[str | None] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

    @property
    def display_name(self) -> str:
        person = " ".join(part for part in (self.civility, self.first_name, self.last_name) if part)
        if person and self.organisation:
            return f"{person} ({self.organisation})"
        return person or self.organisation or ""

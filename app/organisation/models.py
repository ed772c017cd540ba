"""Departments (entités) and the departments of each user."""

from __future__ import annotations

from flask_appbuilder import Model
from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship


class Department(Model):
    """A node of the department tree, materialised from the schema files."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    label_fr: Mapped[str] = mapped_column(String(255), nullable=False)
    label_en: Mapped[str] = mapped_column(String(255), nullable=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), nullable=True)
    # Ids from the root down to this department, e.g. "/3/7/12/": sub-department
    # queries are a prefix match on it.
    path: Mapped[str] = mapped_column(String(512), nullable=False, index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(Text)
    calendar: Mapped[str] = mapped_column(String(40), nullable=False, default="metropole")
    # Departments removed from the schema files stay for the mail that refers to them.
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    parent: Mapped[Department | None] = relationship(remote_side="Department.id")

    def label(self, locale: str) -> str:
        return self.label_en if locale.startswith("en") else self.label_fr

    def __repr__(self) -> str:
        return f"<Department {self.code}>"


class UserDepartment(Model):
    """Membership of a user in a department; exactly one is primary per user."""

    __tablename__ = "user_department"
    __table_args__ = (UniqueConstraint("user_id", "department_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # True when the user heads the department (chef de service).
    is_head: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    department: Mapped[Department] = relationship()

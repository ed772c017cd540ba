"""Typed declarations read from the YAML files in ``schemas/``.

These classes are the public contract of the schema format (version
``SCHEMA_FORMAT_VERSION``): ids are stable keys referenced by permissions,
stored field values and history, while labels may change freely.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_FORMAT_VERSION = 1

ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
DEPARTMENT_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{0,31}$"

Category = Literal["incoming", "outgoing", "internal"]
FieldType = Literal["string", "text", "integer", "decimal", "date", "boolean", "choice", "email"]
DelayUnit = Literal["working", "calendar"]
# What a role may do; the permissions of Flask-AppBuilder are generated from these.
Permission = Literal["register", "process", "statistics", "administer", "read_all"]
BasketScope = Literal[
    "my_departments_tree", "my_primary_department", "assigned_to_me", "registered_by_me"
]
BasketSort = Literal["due_date", "arrival_date", "-arrival_date", "chrono"]
AcknowledgementRegime = Literal["none", "acceptance", "rejection"]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Labels(Spec):
    """A text in French and in English."""

    fr: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, locale: str) -> str:
        return self.en if locale.startswith("en") else self.fr


class DepartmentSpec(Spec):
    code: str = Field(pattern=DEPARTMENT_CODE_PATTERN)
    labels: Labels
    parent: str | None = None
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = None
    address: str | None = None
    # Business calendar zone used to count working days.
    calendar: str = "metropole"


class RoleSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    permissions: list[Permission] = []
    # Mail type ids this role may register, or ["*"] for all of them.
    register_mail_types: list[str] = []


class RegisterSpec(Spec):
    """The registration number format of one category, e.g. ``PREF75/{year}/A/{number:06d}``."""

    category: Category
    format: str

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        names = re.findall(r"{([^}:]*)(?::[^}]*)?}", value)
        if "number" not in names:
            raise ValueError("the format must contain {number}")
        unknown = sorted(set(names) - {"year", "number"})
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}: use {{year}} and {{number}}")
        try:
            value.format(year=2026, number=1)
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"the format cannot be applied: {exc}") from None
        return value


class ChoiceSpec(Spec):
    value: str = Field(pattern=ID_PATTERN)
    labels: Labels


class FieldSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    type: FieldType
    required: bool = False
    help: Labels | None = None
    # Constraints; each applies to the types where it makes sense.
    pattern: str | None = None
    pattern_message: Labels | None = None
    max_length: int | None = Field(default=None, gt=0)
    min: Decimal | None = None
    max: Decimal | None = None
    choices: list[ChoiceSpec] = []
    unit: str | None = None

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class DelaySpec(Spec):
    days: int = Field(ge=0, le=3650)
    unit: DelayUnit = "working"


class MailTypeSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    category: Category
    description: Labels | None = None
    delay: DelaySpec | None = None
    default_department: str | None = None
    acknowledgement: AcknowledgementRegime = "none"
    fields: list[FieldSpec] = []

    def field(self, field_id: str) -> FieldSpec | None:
        return next((item for item in self.fields if item.id == field_id), None)


class StatusSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    closed: bool = False
    # The status given to mail at registration; exactly one status declares it.
    initial: bool = False


class BasketSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    description: Labels | None = None
    scope: BasketScope
    statuses: list[str] = Field(min_length=1)
    sort: BasketSort = "due_date"
    # Position in the menu, smallest first.
    order: int = 0


SECTION_SPECS: dict[str, type[Spec]] = {
    "departments": DepartmentSpec,
    "roles": RoleSpec,
    "registers": RegisterSpec,
    "mail_types": MailTypeSpec,
    "statuses": StatusSpec,
    "baskets": BasketSpec,
}

# The key that identifies an item of each section, for duplicate and reference checks.
SECTION_KEYS: dict[str, str] = {
    "departments": "code",
    "roles": "id",
    "registers": "category",
    "mail_types": "id",
    "statuses": "id",
    "baskets": "id",
}

"""Typed declarations read from the YAML files in ``schemas/``.

These classes are the public contract of the schema format (version
``SCHEMA_FORMAT_VERSION``): ids are stable keys referenced by permissions,
stored field values and history, while labels may change freely.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_FORMAT_VERSION = 1

ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
DEPARTMENT_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{0,31}$"

Category = Literal["incoming", "outgoing", "internal"]
FieldType = Literal["string", "text", "integer", "decimal", "date", "boolean", "choice", "email"]
DelayUnit = Literal["working", "calendar"]
# What a role may do; the permissions of Flask-AppBuilder are generated from these.
Permission = Literal["register", "process", "statistics", "administer", "read_all"]
BasketScope = Literal[
    "my_departments_tree", "my_primary_department", "assigned_to_me", "registered_by_me",
    "my_direction", "any_visible",
]
BasketSort = Literal["due_date", "arrival_date", "-arrival_date", "chrono", "-closed_at"]
# The mail's relation to the user in its distribution list, as a basket filter.
DistributionRole = Literal["copy", "opinion_to_give", "opinion_pending"]
DueBand = Literal["overdue", "due_soon"]
BasketColumn = Literal[
    "chrono", "mail_type", "subject", "arrival_date", "due_date", "status", "assignee",
    "department", "priority", "unread", "closed_at", "opinion_due",
]
DEFAULT_BASKET_COLUMNS = ["chrono", "mail_type", "subject", "arrival_date", "due_date", "status"]
Channel = Literal["post", "email", "web", "hand", "internal"]
Priority = Literal["normal", "urgent", "very_urgent"]
RoutingMode = Literal["first_match", "all_matches"]
ActionOperation = Literal[
    "qualify", "assign", "redirect", "copy", "ask_opinion", "give_opinion", "close",
    "close_without_follow_up", "reopen", "mark_read",
]
# How the acting user relates to the mail; an action lists the relations allowed to run it.
ActorRelation = Literal["assignee", "handling_department", "registrar", "copy", "opinion_requested", "any_visible"]
RedirectBound = Literal["my_sub_departments", "my_direction", "any"]
CommentRule = Literal["none", "optional", "required"]
AcknowledgementRegime = Literal["none", "acceptance", "rejection"]
AcknowledgementFilter = Literal["pending", "sent"]
TemplateKind = Literal["reply", "acknowledgement"]
ReminderWhen = Literal["before", "on", "after"]
# "copies" are the users in copy of the mail and the members of its departments in copy.
ReminderRecipient = Literal["assignee", "department_head", "director", "copies"]


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


class LegalDelaySpec(Spec):
    """Delay after which silence becomes an implicit decision: months or calendar days."""

    months: int | None = Field(default=None, ge=1, le=120)
    days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _check_one_unit(self) -> LegalDelaySpec:
        if (self.months is None) == (self.days is None):
            raise ValueError("give either months or days")
        return self


# Implicit-decision delay of a regime without `legal_delay`: two months (CRPA article L231-1).
DEFAULT_LEGAL_DELAY = LegalDelaySpec(months=2)


class ReminderStepSpec(Spec):
    """One reminder, placed in working days before, on or after the due date."""

    when: ReminderWhen
    working_days: int = Field(default=0, ge=0, le=250)
    # Working days between repetitions while the mail stays open; None sends it once.
    repeat_every: int | None = Field(default=None, ge=1, le=250)
    recipients: list[ReminderRecipient] = Field(min_length=1)

    @field_validator("when", mode="before")
    @classmethod
    def _read_yaml_on(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted `on` as the boolean true.
        return "on" if value is True else value


class ReminderPlanSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    steps: list[ReminderStepSpec] = Field(min_length=1)


class MailTypeSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    category: Category
    description: Labels | None = None
    delay: DelaySpec | None = None
    default_department: str | None = None
    acknowledgement: AcknowledgementRegime = "none"
    # Only with an acknowledgement regime; DEFAULT_LEGAL_DELAY when absent.
    legal_delay: LegalDelaySpec | None = None
    reminder_plan: str | None = None
    fields: list[FieldSpec] = []

    @property
    def implicit_decision_delay(self) -> LegalDelaySpec:
        return self.legal_delay or DEFAULT_LEGAL_DELAY

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
    assignee: Literal["me", "nobody"] | None = None
    distribution_role: DistributionRole | None = None
    due: DueBand | None = None
    # With due "due_soon": due from today to this many working days ahead.
    due_soon_working_days: int = Field(default=3, ge=0, le=60)
    # Only mail closed less than this many days ago.
    closed_within_days: int | None = Field(default=None, gt=0, le=3660)
    columns: list[BasketColumn] = Field(default_factory=lambda: list(DEFAULT_BASKET_COLUMNS), min_length=1)
    # Action ids offered as bulk actions on the basket list.
    actions: list[str] = []
    # Bold rows and an unread count for copies the user has not marked as read.
    unread_marks: bool = False
    # When set, only users holding one of these permissions see the basket.
    permissions: list[Permission] = []
    # Only mail whose running visa circuit waits for me, or for an absent agent I stand in
    # for, at its current step (the signature book, "parapheur").
    signature_book: bool = False
    # Mail whose type requires acknowledgements of receipt: "pending" while one of its senders has
    # none sent yet, "sent" once one was sent (see app.documents.acknowledgements).
    acknowledgement: AcknowledgementFilter | None = None


class RangeSpec(Spec):
    min: Decimal | None = None
    max: Decimal | None = None


class FieldConditionSpec(Spec):
    """A condition on one custom field: exactly one of equals, in, range, pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True)

    field: str = Field(pattern=ID_PATTERN)
    equals: bool | int | Decimal | str | None = None
    in_: list[int | Decimal | str] | None = Field(default=None, alias="in", min_length=1)
    range: RangeSpec | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _check_one_test(self) -> FieldConditionSpec:
        given = [self.equals is not None, self.in_ is not None, self.range is not None, self.pattern is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of equals, in, range, pattern")
        return self


class RoutingConditionSpec(Spec):
    """Conditions of a routing rule: every condition given must hold; a list matches any of its values."""

    mail_types: list[str] = []
    categories: list[Category] = []
    channels: list[Channel] = []
    priorities: list[Priority] = []
    sender_kinds: list[Literal["person", "organisation"]] = []
    # Words searched in the sender's organisation name, accents and case ignored.
    sender_organisations: list[str] = []
    sender_email_domains: list[str] = []
    # Words searched in the subject, accents and case ignored; any one of them matches.
    subject_words: list[str] = []
    fields: list[FieldConditionSpec] = []


class CopiesSpec(Spec):
    # Usernames of agents and department codes that receive the mail for information.
    users: list[str] = []
    departments: list[str] = []


class RoutingOutcomeSpec(Spec):
    department: str | None = None
    # A username, or "default" for the assignee of the handling department's distribution-list model.
    assignee: str | None = None
    copies: CopiesSpec = CopiesSpec()
    priority: Priority | None = None
    distribution_list: str | None = None


class RoutingRuleSpec(Spec):
    id: str = Field(pattern=ID_PATTERN)
    labels: Labels | None = None
    when: RoutingConditionSpec = RoutingConditionSpec()
    then: RoutingOutcomeSpec


class RoutingRuleSetSpec(Spec):
    """An ordered set of routing rules evaluated at registration."""

    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    mode: RoutingMode = "first_match"
    # Rule sets run in this order, smallest first.
    order: int = 0
    rules: list[RoutingRuleSpec] = Field(min_length=1)


class OpinionRequestSpec(Spec):
    user: str | None = None
    department: str | None = None
    # Deadline of the opinion, in working days after the request.
    working_days: int = Field(default=10, ge=0, le=365)


class DistributionListSpec(Spec):
    """A distribution-list model: the assignee, copies and opinion requests given to a mail."""

    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    # When set, the model applies to every mail whose handling department becomes this one.
    department: str | None = None
    # Username of the default assignee.
    assignee: str | None = None
    copies: CopiesSpec = CopiesSpec()
    opinions: list[OpinionRequestSpec] = []


class RequiredFieldsSpec(Spec):
    mail_type: str
    fields: list[str] = Field(min_length=1)


class RedirectBoundSpec(Spec):
    permission: Permission
    bound: RedirectBound


class ActionSpec(Spec):
    """A transition of the mail state machine, carried out by one operation."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True)

    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    operation: ActionOperation
    from_statuses: list[str] = Field(alias="from", min_length=1)
    # The status after the action; None keeps the current status.
    to: str | None = None
    # The portal permission needed, on top of one of the relations.
    permission: Permission | None = "process"
    relations: list[ActorRelation] = Field(min_length=1)
    # Redirect only: the first entry whose permission the user holds sets how far they may redirect.
    bounds: list[RedirectBoundSpec] = []
    comment: CommentRule = "optional"
    # Custom fields that must have a value before the action runs, e.g. fields required at closing.
    required_fields: list[RequiredFieldsSpec] = []
    bulk: bool = False
    order: int = 0


CircuitStepKind = Literal["approval", "signature"]


class CircuitStepSpec(Spec):
    """One step of a visa circuit model: its kind and the usernames of its members."""

    kind: CircuitStepKind
    # Several members approve (or sign) in parallel, and all of them must do so.
    users: list[str] = Field(min_length=1)


class CircuitModelSpec(Spec):
    """A visa circuit model: approvers then signatories, offered on the mail of some departments and types."""

    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    # Handling departments (sub-departments included) whose mail is offered the model; empty means all.
    departments: list[str] = []
    # Mail types offered the model; empty means all.
    mail_types: list[str] = []
    # Status of the mail once the last signatory has signed, e.g. to_send or closed.
    status_after_signature: str = "to_send"
    steps: list[CircuitStepSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_order(self) -> CircuitModelSpec:
        kinds = [step.kind for step in self.steps]
        if "signature" not in kinds:
            raise ValueError("a circuit needs at least one signature step")
        if "approval" in kinds[kinds.index("signature"):]:
            raise ValueError("approval steps must come before the signature steps")
        return self


class TemplateFilesSpec(Spec):
    """The .docx file of a template per language, as paths relative to the schemas directory."""

    fr: str = Field(pattern=r"^[A-Za-z0-9_./-]+\.docx$")
    en: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_./-]+\.docx$")

    def get(self, language: str) -> str | None:
        return self.en if language == "en" else self.fr

    @field_validator("fr", "en")
    @classmethod
    def _check_inside(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError("the path must stay inside the schemas directory")
        return value


class TemplateSpec(Spec):
    """A document template: a reply or an acknowledgement of receipt, with its .docx file per language."""

    id: str = Field(pattern=ID_PATTERN)
    labels: Labels
    kind: TemplateKind
    files: TemplateFilesSpec
    # Mail type ids that may use it; empty means every type.
    mail_types: list[str] = []
    # Department codes that may use it, sub-departments included; empty means every department.
    departments: list[str] = []
    order: int = 0

    @property
    def languages(self) -> list[str]:
        return [language for language in ("fr", "en") if self.files.get(language)]


ConversionFactorId = Literal["pages_per_attachment", "sheets_per_page", "paper_grams_per_sheet", "toner_grams_per_page"]


class ConversionFactorSpec(Spec):
    """A factor turning the dashboard's count of electronic documents into paper and toner saved."""

    id: ConversionFactorId
    labels: Labels
    value: float = Field(gt=0)
    unit: Labels
    # Where the value comes from, shown next to the figure.
    source: Labels


SECTION_SPECS: dict[str, type[Spec]] = {
    "departments": DepartmentSpec,
    "roles": RoleSpec,
    "registers": RegisterSpec,
    "mail_types": MailTypeSpec,
    "statuses": StatusSpec,
    "baskets": BasketSpec,
    "reminder_plans": ReminderPlanSpec,
    "routing": RoutingRuleSetSpec,
    "distribution_lists": DistributionListSpec,
    "actions": ActionSpec,
    "circuits": CircuitModelSpec,
    "templates": TemplateSpec,
    "conversion_factors": ConversionFactorSpec,
}

# The key that identifies an item of each section, for duplicate and reference checks.
SECTION_KEYS: dict[str, str] = {
    "departments": "code",
    "roles": "id",
    "registers": "category",
    "mail_types": "id",
    "statuses": "id",
    "baskets": "id",
    "reminder_plans": "id",
    "routing": "id",
    "distribution_lists": "id",
    "actions": "id",
    "circuits": "id",
    "templates": "id",
    "conversion_factors": "id",
}

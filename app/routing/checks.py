"""Load-time checks of the routing rules, distribution-list models and actions.

The loader calls ``check_processing_sections`` after its own checks.  Besides
references to missing departments, mail types, fields, statuses and actions,
it reports two kinds of rule-set mistakes instead of resolving them silently:

- a conflict: two rules that can both fire on the same mail (they sit in
  different rule sets, or in one ``all_matches`` set), whose conditions can
  hold together, and that set different departments, assignees, priorities
  or distribution lists;
- a shadowed rule: in a ``first_match`` set, an earlier rule matches every
  mail that a later one would match, so the later one never fires.

Overlap is decided on what can be compared without a mail: mail types,
categories, channels, priorities, sender kinds and e-mail domains, and field
values given by ``equals``, ``in`` or ``range``.  Subject words, organisation
words and patterns are assumed to overlap, so a conflict is reported unless
another condition makes the rules exclusive.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from itertools import combinations
from typing import Any

from app.configuration.errors import SchemaError
from app.configuration.specs import (
    ActionSpec,
    BasketSpec,
    CopiesSpec,
    DistributionListSpec,
    FieldConditionSpec,
    RoutingConditionSpec,
    RoutingRuleSetSpec,
    RoutingRuleSpec,
)

ErrorAt = Callable[..., SchemaError]
SCALAR_OUTCOMES = ("department", "assignee", "priority", "distribution_list")
# List conditions compared as plain sets of values.
LIST_CONDITIONS = ("channels", "priorities", "sender_kinds", "sender_email_domains")


def check_processing_sections(index: dict[str, dict[str, Any]], errors: list[SchemaError], error_at: ErrorAt) -> None:
    """Append to ``errors`` every problem of the routing, distribution_lists, actions and basket actions.

    References into a section that already has an error are not checked: an
    item that failed validation is missing from ``index``, and reporting
    every reference to it would bury the one real error.
    """
    broken = {error.key.split("[")[0].split(".")[0] for error in errors}
    checks = [
        (_check_distribution_lists, {"departments"}),
        (_check_rule_references, {"departments", "mail_types", "distribution_lists"}),
        (_check_rule_sets, {"mail_types"}),
        (_check_actions, {"statuses", "mail_types"}),
        (_check_basket_actions, {"actions"}),
    ]
    for check, sections in checks:
        if not sections & broken:
            check(index, errors, error_at)


# --- References -------------------------------------------------------------------


def _check_copies(item: Any, where: tuple, copies: CopiesSpec, index: dict, errors: list, error_at: ErrorAt) -> None:
    for position, code in enumerate(copies.departments):
        if code not in index["departments"]:
            errors.append(error_at(item, where + ("copies", "departments", position), "unknown_department", code=code))


def _check_distribution_lists(index: dict, errors: list[SchemaError], error_at: ErrorAt) -> None:
    owners: dict[str, str] = {}
    for item in index["distribution_lists"].values():
        spec: DistributionListSpec = item.spec
        if spec.department is not None:
            if spec.department not in index["departments"]:
                errors.append(error_at(item, ("department",), "unknown_department", code=spec.department))
            elif spec.department in owners:
                errors.append(
                    error_at(item, ("department",), "distribution_list_department_twice",
                             code=spec.department, other=owners[spec.department])
                )
            else:
                owners[spec.department] = spec.id
        _check_copies(item, (), spec.copies, index, errors, error_at)
        for position, opinion in enumerate(spec.opinions):
            if (opinion.user is None) == (opinion.department is None):
                errors.append(error_at(item, ("opinions", position), "opinion_target"))
            elif opinion.department is not None and opinion.department not in index["departments"]:
                errors.append(
                    error_at(item, ("opinions", position, "department"), "unknown_department", code=opinion.department)
                )


def possible_mail_types(condition: RoutingConditionSpec, mail_types: dict[str, Any]) -> set[str]:
    """Return the ids of the declared mail types that the rule's type and category conditions allow."""
    types = set(condition.mail_types) if condition.mail_types else set(mail_types)
    if condition.categories:
        types = {
            type_id for type_id in types
            if type_id in mail_types and mail_types[type_id].spec.category in condition.categories
        }
    return types


def _check_rule_references(index: dict, errors: list[SchemaError], error_at: ErrorAt) -> None:
    for item in index["routing"].values():
        rule_set: RoutingRuleSetSpec = item.spec
        for position, rule in enumerate(rule_set.rules):
            where = ("rules", position)
            for type_position, type_id in enumerate(rule.when.mail_types):
                if type_id not in index["mail_types"]:
                    errors.append(
                        error_at(item, where + ("when", "mail_types", type_position), "unknown_mail_type", id=type_id)
                    )
            types = possible_mail_types(rule.when, index["mail_types"])
            for field_position, condition in enumerate(rule.when.fields):
                declared = any(
                    index["mail_types"][type_id].spec.field(condition.field) is not None
                    for type_id in types if type_id in index["mail_types"]
                )
                if not declared:
                    errors.append(
                        error_at(item, where + ("when", "fields", field_position, "field"), "unknown_field",
                                 field=condition.field)
                    )
                    continue
                _check_choice_condition(item, where + ("when", "fields", field_position), condition,
                                        [index["mail_types"][type_id].spec for type_id in types
                                         if type_id in index["mail_types"]], errors, error_at)
            outcome = rule.then
            if outcome.department is not None and outcome.department not in index["departments"]:
                errors.append(error_at(item, where + ("then", "department"), "unknown_department", code=outcome.department))
            if outcome.distribution_list is not None and outcome.distribution_list not in index["distribution_lists"]:
                errors.append(
                    error_at(item, where + ("then", "distribution_list"), "unknown_distribution_list",
                             id=outcome.distribution_list)
                )
            _check_copies(item, where + ("then",), outcome.copies, index, errors, error_at)


def _check_choice_condition(item: Any, where: tuple, condition: FieldConditionSpec, specs: list[Any],
                            errors: list[SchemaError], error_at: ErrorAt) -> None:
    """Refuse a condition on a choice field that no value of the field can meet: a value not offered, or a range."""
    fields = [field for spec in specs if (field := spec.field(condition.field)) is not None]
    if not fields or any(field.type != "choice" for field in fields):
        return
    offered = {choice.value for field in fields for choice in field.choices}
    if condition.range is not None:
        errors.append(error_at(item, where + ("range",), "range_on_choice", field=condition.field))
    for value in sorted(_values(condition) or ()):
        if value not in offered:
            errors.append(error_at(item, where, "not_a_choice", field=condition.field, value=value,
                                   expected=", ".join(sorted(offered))))


# --- Overlap, conflicts and shadowed rules ---------------------------------------


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _in_range(value: Any, condition: FieldConditionSpec) -> bool:
    number = _number(value)
    assert condition.range is not None
    if number is None:
        return False
    low, high = condition.range.min, condition.range.max
    return (low is None or number >= low) and (high is None or number <= high)


def _values(condition: FieldConditionSpec) -> set[str] | None:
    """Return the finite set of values the condition accepts, as text, or None when it is not finite."""
    if condition.equals is not None:
        return {str(condition.equals)}
    if condition.in_ is not None:
        return {str(value) for value in condition.in_}
    return None


def _fields_can_overlap(first: FieldConditionSpec, second: FieldConditionSpec) -> bool:
    first_values, second_values = _values(first), _values(second)
    if first_values is not None and second_values is not None:
        return bool(first_values & second_values)
    if first_values is not None and second.range is not None:
        return any(_in_range(value, second) for value in first_values)
    if second_values is not None and first.range is not None:
        return any(_in_range(value, first) for value in second_values)
    if first.range is not None and second.range is not None:
        low = max((v for v in (first.range.min, second.range.min) if v is not None), default=None)
        high = min((v for v in (first.range.max, second.range.max) if v is not None), default=None)
        return low is None or high is None or low <= high
    return True


def conditions_can_overlap(first: RoutingConditionSpec, second: RoutingConditionSpec, mail_types: dict) -> bool:
    """Return False only when no mail can satisfy both conditions."""
    if not possible_mail_types(first, mail_types) & possible_mail_types(second, mail_types):
        return False
    for name in LIST_CONDITIONS:
        first_values, second_values = getattr(first, name), getattr(second, name)
        if first_values and second_values and not set(first_values) & set(second_values):
            return False
    for first_field in first.fields:
        for second_field in second.fields:
            if first_field.field == second_field.field and not _fields_can_overlap(first_field, second_field):
                return False
    return True


def _field_implies(specific: FieldConditionSpec, general: FieldConditionSpec) -> bool:
    """Return True when every value accepted by ``specific`` is accepted by ``general``."""
    if specific.model_dump() == general.model_dump():
        return True
    specific_values, general_values = _values(specific), _values(general)
    if specific_values is not None and general_values is not None:
        return specific_values <= general_values
    if specific_values is not None and general.range is not None:
        return all(_in_range(value, general) for value in specific_values)
    if specific.range is not None and general.range is not None:
        low_ok = general.range.min is None or (specific.range.min is not None and specific.range.min >= general.range.min)
        high_ok = general.range.max is None or (specific.range.max is not None and specific.range.max <= general.range.max)
        return low_ok and high_ok
    return False


def condition_covers(general: RoutingConditionSpec, specific: RoutingConditionSpec, mail_types: dict) -> bool:
    """Return True when every mail matching ``specific`` also matches ``general``."""
    if not possible_mail_types(specific, mail_types) <= possible_mail_types(general, mail_types):
        return False
    for name in (*LIST_CONDITIONS, "subject_words", "sender_organisations"):
        general_values, specific_values = getattr(general, name), getattr(specific, name)
        if general_values and not (specific_values and set(specific_values) <= set(general_values)):
            return False
    for general_field in general.fields:
        if not any(
            item.field == general_field.field and _field_implies(item, general_field) for item in specific.fields
        ):
            return False
    return True


def _outcome_clash(first: RoutingRuleSpec, second: RoutingRuleSpec) -> str | None:
    for name in SCALAR_OUTCOMES:
        first_value, second_value = getattr(first.then, name), getattr(second.then, name)
        if first_value is not None and second_value is not None and first_value != second_value:
            return name
    return None


def _check_rule_sets(index: dict, errors: list[SchemaError], error_at: ErrorAt) -> None:
    mail_types = index["mail_types"]
    # (item, position, rule, rule set)
    rules: list[tuple[Any, int, RoutingRuleSpec, RoutingRuleSetSpec]] = []
    for item in sorted(index["routing"].values(), key=lambda entry: (entry.spec.order, entry.spec.id)):
        rule_set: RoutingRuleSetSpec = item.spec
        seen: set[str] = set()
        for position, rule in enumerate(rule_set.rules):
            if rule.id in seen:
                errors.append(error_at(item, ("rules", position, "id"), "duplicate_id", id=rule.id, other=rule_set.id))
            seen.add(rule.id)
            if rule_set.mode == "first_match":
                for earlier in rule_set.rules[:position]:
                    if condition_covers(earlier.when, rule.when, mail_types):
                        errors.append(
                            error_at(item, ("rules", position, "id"), "routing_shadowed", rule=rule.id, other=earlier.id)
                        )
                        break
            rules.append((item, position, rule, rule_set))

    for (first_item, first_position, first, first_set), (second_item, position, second, second_set) in combinations(rules, 2):
        if first_set.id == second_set.id and first_set.mode == "first_match":
            continue
        outcome = _outcome_clash(first, second)
        if outcome is None or not conditions_can_overlap(first.when, second.when, mail_types):
            continue
        other_place = f"{first_item.file}:{first_item.positions.line_of(first_item.path + ('rules', first_position))}"
        errors.append(
            error_at(second_item, ("rules", position, "id"), "routing_conflict",
                     rule=second.id, other=first.id, other_place=other_place, outcome=outcome)
        )


# --- Actions and baskets ----------------------------------------------------------


def _check_actions(index: dict, errors: list[SchemaError], error_at: ErrorAt) -> None:
    for item in index["actions"].values():
        spec: ActionSpec = item.spec
        for position, status in enumerate(spec.from_statuses):
            if status not in index["statuses"]:
                errors.append(error_at(item, ("from", position), "unknown_status", id=status))
        if spec.to is not None and spec.to not in index["statuses"]:
            errors.append(error_at(item, ("to",), "unknown_status", id=spec.to))
        if spec.bounds and spec.operation != "redirect":
            errors.append(error_at(item, ("bounds",), "bounds_only_redirect"))
        for position, required in enumerate(spec.required_fields):
            type_item = index["mail_types"].get(required.mail_type)
            if type_item is None:
                errors.append(
                    error_at(item, ("required_fields", position, "mail_type"), "unknown_mail_type", id=required.mail_type)
                )
                continue
            for field_position, field_id in enumerate(required.fields):
                if type_item.spec.field(field_id) is None:
                    errors.append(
                        error_at(item, ("required_fields", position, "fields", field_position), "unknown_field",
                                 field=field_id)
                    )


def _check_basket_actions(index: dict, errors: list[SchemaError], error_at: ErrorAt) -> None:
    for item in index["baskets"].values():
        spec: BasketSpec = item.spec
        for position, action_id in enumerate(spec.actions):
            action = index["actions"].get(action_id)
            if action is None:
                errors.append(error_at(item, ("actions", position), "unknown_action", id=action_id))
            elif not action.spec.bulk:
                errors.append(error_at(item, ("actions", position), "action_not_bulk", id=action_id))

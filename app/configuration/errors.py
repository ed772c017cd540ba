"""Errors found in the schema files, rendered in the reader's language."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

# One message per error code; pydantic's error types are mapped onto these codes.
MESSAGES = {
    "yaml_syntax": _l("invalid YAML (check indentation and quotes): %(detail)s"),
    "yaml_tab": _l("a tab character: indent with spaces only"),
    "yaml_indentation": _l("the indentation does not match the lines above: align the keys of one block"),
    "yaml_colon": _l("a colon where none was expected: check the indentation of this line, or put a text containing ': ' between quotes"),
    "yaml_quote": _l("a quote opened on this line is not closed"),
    "yaml_escape": _l("a backslash in a text between double quotes: put the text between single quotes instead, or write the backslash twice"),
    "yaml_after_quote": _l(
        "text goes on after a closing quote, on this line or one above: inside single quotes write an apostrophe "
        "twice (''), and end a quoted text with its quote"
    ),
    "not_utf8": _l("the file is not in UTF-8: save it again in UTF-8 (the byte %(byte)s cannot be read)"),
    "no_directory": _l("the schema directory does not exist"),
    "department_in_use": _l(
        "the department %(code)s is removed from the files but still has open mail (%(mails)s) or active agents "
        "(%(users)s): close or move its mail and give its agents other departments first, or keep it"
    ),
    "mail_type_in_use": _l(
        "the mail type %(type)s is removed from the files but the register holds mail of this type (%(mails)s): "
        "keep it; to stop its registration, take it out of the register_mail_types of the roles"
    ),
    "duplicate_key": _l("this key is written twice in the same block"),
    "file_not_mapping": _l("the file must be a mapping of sections such as 'departments:' or 'mail_types:'"),
    "unknown_section": _l("unknown section; expected one of: %(expected)s"),
    "section_not_list": _l("this section must be a list of items, each starting with '- '"),
    "section_empty": _l("the section '%(key)s' is declared in no file, but is required"),
    "missing": _l("required key is missing"),
    "extra_forbidden": _l("unknown key; check its spelling against the schema format"),
    "literal_error": _l("invalid value %(input)s: expected one of %(expected)s"),
    "string_type": _l("invalid value %(input)s: a text is expected"),
    "int_type": _l("invalid value %(input)s: a whole number is expected"),
    "int_parsing": _l("invalid value %(input)s: a whole number is expected"),
    "bool_type": _l("invalid value %(input)s: true or false is expected"),
    "bool_parsing": _l("invalid value %(input)s: true or false is expected"),
    "decimal_parsing": _l("invalid value %(input)s: a number is expected"),
    "list_type": _l("invalid value: a list is expected"),
    "model_type": _l("invalid value: a block of keys is expected"),
    "dict_type": _l("invalid value: a block of keys is expected"),
    "string_pattern_mismatch": _l("invalid value %(input)s: it must match %(pattern)s"),
    "string_too_short": _l("the value must not be empty"),
    "too_short": _l("the list must not be empty"),
    "greater_than": _l("invalid value %(input)s: it must be greater than %(limit)s"),
    "greater_than_equal": _l("invalid value %(input)s: it must be at least %(limit)s"),
    "less_than_equal": _l("invalid value %(input)s: it must be at most %(limit)s"),
    "value_error": _l("invalid value: %(detail)s"),
    "duplicate_id": _l("the id '%(id)s' is already declared (%(other)s)"),
    "unknown_department": _l("unknown department '%(code)s': declare it in the departments section"),
    "unknown_calendar": _l("unknown calendar '%(zone)s'; expected one of: %(expected)s"),
    "department_cycle": _l("the department tree has a cycle: %(cycle)s"),
    "missing_register": _l("no register declares a registration number format for category '%(category)s'"),
    "choices_missing": _l("a field of type choice needs a list of choices"),
    "choices_unexpected": _l("choices are only allowed on fields of type choice, not %(type)s"),
    "min_above_max": _l("min is greater than max"),
    "unknown_mail_type": _l("unknown mail type '%(id)s'"),
    "unknown_status": _l("unknown status '%(id)s'"),
    "initial_status_count": _l("exactly one status must be marked initial: true (found %(count)s)"),
    "invalid": _l("invalid value: %(detail)s"),
    "unknown_field": _l("unknown field '%(field)s': no mail type of this rule declares it"),
    "not_a_choice": _l("the field '%(field)s' never has the value '%(value)s': its choices are %(expected)s"),
    "range_on_choice": _l("the field '%(field)s' is a choice: compare it with equals or in, not a range"),
    "unknown_distribution_list": _l("unknown distribution list '%(id)s'"),
    "unknown_action": _l("unknown action '%(id)s'"),
    "action_not_bulk": _l("action '%(id)s' cannot be offered on a basket list: declare it with bulk: true"),
    "routing_conflict": _l(
        "rule '%(rule)s' can match the same mail as rule '%(other)s' (%(other_place)s) but sets another "
        "%(outcome)s: make their conditions exclusive or put them in the same first_match rule set"
    ),
    "routing_shadowed": _l(
        "rule '%(rule)s' can never match: rule '%(other)s' before it in this first_match rule set "
        "matches every mail it would match"
    ),
    "distribution_list_department_twice": _l(
        "department '%(code)s' already has the distribution-list model '%(other)s'"
    ),
    "opinion_target": _l("an opinion request names exactly one of user or department"),
    "bounds_only_redirect": _l("bounds apply only to an action whose operation is redirect"),
    "legal_delay_without_regime": _l("legal_delay needs an acknowledgement regime: set acknowledgement to acceptance or rejection"),
    "unknown_reminder_plan": _l("unknown reminder plan '%(id)s': declare it in the reminder_plans section"),
    "template_file_missing": _l("the template file %(path)s does not exist in the schemas directory"),
    "template_not_docx": _l("the template file %(path)s is not a valid .docx document"),
    "template_syntax": _l("the template file %(path)s has a placeholder error: %(detail)s"),
    "template_unknown_field": _l(
        "the template file %(path)s uses the unknown merge field '%(field)s': see the list of merge fields on the templates screen"
    ),
    "template_missing_mention": _l(
        "the acknowledgement template %(path)s lacks the merge field '%(field)s', needed for a mention required by CRPA article R112-5"
    ),
    "reminder_offset": _l("working_days must be 0 for a reminder on the due date and at least 1 for one before or after it (this step is %(when)s)"),
}


@dataclass(frozen=True)
class SchemaError:
    """One problem in one schema file, located by line and dotted key."""

    file: str
    line: int
    key: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pydantic(cls, file: str, line: int, key: str, error: Any) -> SchemaError:
        code = error["type"]
        context = error.get("ctx") or {}
        params: dict[str, Any] = {
            "input": repr(error.get("input")) if not isinstance(error.get("input"), (dict, list)) else "",
            "expected": context.get("expected", ""),
            "pattern": context.get("pattern", ""),
            "limit": context.get("gt", context.get("ge", context.get("le", ""))),
            "detail": str(context.get("error", error.get("msg", ""))),
        }
        if code == "literal_error":
            params["choices"] = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        if code not in MESSAGES:
            params["detail"] = error.get("msg", code)
            code = "invalid"
        return cls(file, line, key, code, params)

    def message(self) -> str:
        """Return the message in the current locale (French unless forced otherwise)."""
        params = {"key": self.key, **self.params}
        if params.get("choices"):
            # Pydantic writes its list of accepted values in English ("'a', 'b' or 'c'").
            choices = [repr(choice) for choice in params["choices"]]
            last = str(_l("or")) + " " + choices[-1]
            params["expected"] = f"{', '.join(choices[:-1])} {last}" if len(choices) > 1 else choices[0]
        return str(MESSAGES[self.code]) % params

    def __str__(self) -> str:
        location = "schemas"
        if self.file:
            location = f"{self.file}:{self.line}" if self.line else self.file
        key = f" [{self.key}]" if self.key else ""
        return f"{location}{key}: {self.message()}"

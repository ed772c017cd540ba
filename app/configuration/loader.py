"""Read and validate the YAML files of ``schemas/`` into one Configuration.

Every file is a mapping of sections (``departments``, ``mail_types``...), each
a list of items; a section may be split over several files.  Validation runs
completely before anything is applied: the loader returns either a
Configuration or the full list of errors, each naming file, line and key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.configuration.errors import SchemaError
from app.configuration.specs import (
    SECTION_KEYS,
    SECTION_SPECS,
    ActionSpec,
    BasketSpec,
    CircuitModelSpec,
    ConversionFactorSpec,
    DepartmentSpec,
    DistributionListSpec,
    MailTypeSpec,
    RegisterSpec,
    ReminderPlanSpec,
    RoleSpec,
    RoutingRuleSetSpec,
    Spec,
    StatusSpec,
    TemplateSpec,
)
from app.deadlines.calendar import ZONES
from app.routing.checks import check_processing_sections

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceFile:
    """One schema file: its path relative to the schemas directory, and its text."""

    name: str
    text: str


@dataclass
class Configuration:
    """The validated declarations, indexed by their stable ids."""

    departments: dict[str, DepartmentSpec] = field(default_factory=dict)
    roles: dict[str, RoleSpec] = field(default_factory=dict)
    registers: dict[str, RegisterSpec] = field(default_factory=dict)
    mail_types: dict[str, MailTypeSpec] = field(default_factory=dict)
    statuses: dict[str, StatusSpec] = field(default_factory=dict)
    baskets: dict[str, BasketSpec] = field(default_factory=dict)
    reminder_plans: dict[str, ReminderPlanSpec] = field(default_factory=dict)
    routing: dict[str, RoutingRuleSetSpec] = field(default_factory=dict)
    distribution_lists: dict[str, DistributionListSpec] = field(default_factory=dict)
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    conversion_factors: dict[str, ConversionFactorSpec] = field(default_factory=dict)
    circuits: dict[str, CircuitModelSpec] = field(default_factory=dict)
    templates: dict[str, TemplateSpec] = field(default_factory=dict)
    checksum: str = ""
    version: int | None = None

    @property
    def initial_status(self) -> str:
        return next(status.id for status in self.statuses.values() if status.initial)

    @property
    def closed_statuses(self) -> set[str]:
        return {status.id for status in self.statuses.values() if status.closed}

    def department_children(self) -> dict[str | None, list[str]]:
        children: dict[str | None, list[str]] = {}
        for department in self.departments.values():
            children.setdefault(department.parent, []).append(department.code)
        return children


class LoadFailed(Exception):
    """The schema files are invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[SchemaError]):
        super().__init__(f"{len(errors)} error(s) in the schema files")
        self.errors = errors


# --- Reading YAML with line numbers ---------------------------------------------


class _Positions:
    """Line numbers (1-based) of every key and list item, by path."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}

    def line_of(self, path: Path_) -> int:
        """Return the line of ``path`` or of its nearest declared parent."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def _node_to_python(
    node: yaml.Node, path: Path_, positions: _Positions, file_name: str, errors: list[SchemaError]
) -> Any:
    positions.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            key_path = path + (key,)
            if key in result:
                errors.append(
                    SchemaError(file_name, key_node.start_mark.line + 1, _dotted(key_path), "duplicate_key")
                )
                continue
            positions.lines[key_path] = key_node.start_mark.line + 1
            result[key] = _node_to_python(value_node, key_path, positions, file_name, errors)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _node_to_python(item, path + (index,), positions, file_name, errors)
            for index, item in enumerate(node.value)
        ]
    # Scalars: the composer already resolved the tag (int, bool, null...).
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.constructor.SafeConstructor()


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


# The problems PyYAML reports most often, by the start of its English text, and the message code of each.
_YAML_PROBLEMS = (
    ("found character '\\t'", "yaml_tab"),
    ("found a tab character", "yaml_tab"),
    # A scalar where a key should come: text after a closing quote, or an apostrophe inside '...'.
    ("expected <block end>, but found '<scalar>'", "yaml_after_quote"),
    ("expected <block end>", "yaml_indentation"),
    ("did not find expected key", "yaml_indentation"),
    ("mapping values are not allowed here", "yaml_colon"),
)


def _yaml_problem(error: yaml.MarkedYAMLError) -> tuple[str, int | None]:
    """Return the message code of a YAML syntax error and the line to name, None for PyYAML's own."""
    if "quoted scalar" in str(error.context or ""):
        if str(error.problem or "").startswith("found unknown escape character"):
            return "yaml_escape", None
        # A quote left open: the line where it opens, not the end of the file where PyYAML stopped.
        return "yaml_quote", error.context_mark.line + 1 if error.context_mark else None
    problem = str(error.problem or "")
    for start, code in _YAML_PROBLEMS:
        if problem.startswith(start):
            return code, None
    return "yaml_syntax", None


def _parse_file(source: SourceFile, errors: list[SchemaError]) -> tuple[Any, _Positions]:
    positions = _Positions()
    try:
        node = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        code, line = _yaml_problem(exc)
        params = {"detail": str(exc.problem or exc)} if code == "yaml_syntax" else {}
        errors.append(SchemaError(source.name, line or (mark.line + 1 if mark else 1), "", code, params))
        return None, positions
    if node is None:
        return {}, positions
    return _node_to_python(node, (), positions, source.name, errors), positions


# --- Validation -----------------------------------------------------------------


@dataclass
class _Item:
    section: str
    spec: Spec
    file: str
    line: int
    path: Path_
    positions: _Positions


def _validate_sections(
    source: SourceFile, data: Any, positions: _Positions, errors: list[SchemaError], invalid: dict[str, set[str]],
) -> list[_Item]:
    """Return the valid items of the file's sections; add the id of each invalid one to ``invalid``."""
    if not isinstance(data, dict):
        errors.append(SchemaError(source.name, 1, "", "file_not_mapping"))
        return []

    items: list[_Item] = []
    for section, entries in data.items():
        if section not in SECTION_SPECS:
            errors.append(
                SchemaError(
                    source.name, positions.line_of((section,)), section, "unknown_section",
                    {"expected": ", ".join(SECTION_SPECS)},
                )
            )
            continue
        if not isinstance(entries, list):
            errors.append(SchemaError(source.name, positions.line_of((section,)), section, "section_not_list"))
            continue
        for index, entry in enumerate(entries):
            item = _validate_item(source, section, index, entry, positions, errors)
            if item is not None:
                items.append(item)
            elif isinstance(entry, dict) and isinstance(entry.get(SECTION_KEYS[section]), str):
                invalid[section].add(entry[SECTION_KEYS[section]])
    return items


def _validate_item(
    source: SourceFile, section: str, index: int, entry: Any, positions: _Positions,
    errors: list[SchemaError],
) -> _Item | None:
    path: Path_ = (section, index)
    try:
        spec = SECTION_SPECS[section].model_validate(entry)
    except ValidationError as exc:
        for error in exc.errors():
            error_path = path + tuple(part for part in error["loc"] if part != "__root__")
            errors.append(
                SchemaError.from_pydantic(source.name, positions.line_of(error_path), _dotted(error_path), error)
            )
        return None
    return _Item(section, spec, source.name, positions.line_of(path), path, positions)


def _index_items(items: list[_Item], errors: list[SchemaError]) -> dict[str, dict[str, _Item]]:
    index: dict[str, dict[str, _Item]] = {section: {} for section in SECTION_SPECS}
    for item in items:
        key_name = SECTION_KEYS[item.section]
        key = getattr(item.spec, key_name)
        existing = index[item.section].get(key)
        if existing is not None:
            errors.append(
                SchemaError(
                    item.file, item.line, _dotted(item.path + (key_name,)), "duplicate_id",
                    {"id": key, "other": f"{existing.file}:{existing.line}"},
                )
            )
            continue
        index[item.section][key] = item
    return index


def _error_at(item: _Item, key: Path_, error_code: str, **params: Any) -> SchemaError:
    path = item.path + key
    return SchemaError(item.file, item.positions.line_of(path), _dotted(path), error_code, params)


def _check_departments(departments: dict[str, _Item], errors: list[SchemaError]) -> None:
    for item in departments.values():
        spec = item.spec
        assert isinstance(spec, DepartmentSpec)
        if spec.parent is not None and spec.parent not in departments:
            errors.append(_error_at(item, ("parent",), "unknown_department", code=spec.parent))
        if spec.calendar not in ZONES:
            errors.append(
                _error_at(item, ("calendar",), "unknown_calendar", zone=spec.calendar, expected=", ".join(ZONES))
            )

    for code, item in departments.items():
        seen = [code]
        parent = item.spec.parent  # type: ignore[attr-defined]
        while parent is not None and parent in departments:
            if parent in seen:
                errors.append(_error_at(item, ("parent",), "department_cycle", cycle=" → ".join(seen + [parent])))
                break
            seen.append(parent)
            parent = departments[parent].spec.parent  # type: ignore[attr-defined]


def _check_mail_types(index: dict[str, dict[str, _Item]], errors: list[SchemaError]) -> None:
    for item in index["mail_types"].values():
        spec = item.spec
        assert isinstance(spec, MailTypeSpec)
        if spec.default_department and spec.default_department not in index["departments"]:
            errors.append(_error_at(item, ("default_department",), "unknown_department", code=spec.default_department))
        if spec.category not in index["registers"]:
            errors.append(_error_at(item, ("category",), "missing_register", category=spec.category))
        seen: set[str] = set()
        for position, field_spec in enumerate(spec.fields):
            where = ("fields", position)
            if field_spec.id in seen:
                errors.append(_error_at(item, where + ("id",), "duplicate_id", id=field_spec.id, other=spec.id))
            seen.add(field_spec.id)
            if field_spec.type == "choice" and not field_spec.choices:
                errors.append(_error_at(item, where + ("choices",), "choices_missing"))
            if field_spec.type != "choice" and field_spec.choices:
                errors.append(_error_at(item, where + ("choices",), "choices_unexpected", type=field_spec.type))
            if field_spec.min is not None and field_spec.max is not None and field_spec.min > field_spec.max:
                errors.append(_error_at(item, where + ("min",), "min_above_max"))
        _check_deadline_keys(item, spec, index, errors)


def _check_deadline_keys(
    item: _Item, spec: MailTypeSpec, index: dict[str, dict[str, _Item]], errors: list[SchemaError]
) -> None:
    if spec.legal_delay is not None and spec.acknowledgement == "none":
        errors.append(_error_at(item, ("legal_delay",), "legal_delay_without_regime"))
    if spec.reminder_plan is not None and spec.reminder_plan not in index["reminder_plans"]:
        errors.append(_error_at(item, ("reminder_plan",), "unknown_reminder_plan", id=spec.reminder_plan))


def _check_reminder_plans(plans: dict[str, _Item], errors: list[SchemaError]) -> None:
    for item in plans.values():
        spec = item.spec
        assert isinstance(spec, ReminderPlanSpec)
        for position, step in enumerate(spec.steps):
            if (step.when == "on") != (step.working_days == 0):
                errors.append(_error_at(item, ("steps", position, "working_days"), "reminder_offset", when=step.when))


def _check_references(index: dict[str, dict[str, _Item]], errors: list[SchemaError]) -> None:
    for item in index["roles"].values():
        spec = item.spec
        assert isinstance(spec, RoleSpec)
        for position, type_id in enumerate(spec.register_mail_types):
            if type_id != "*" and type_id not in index["mail_types"]:
                errors.append(
                    _error_at(item, ("register_mail_types", position), "unknown_mail_type", id=type_id)
                )

    for item in index["baskets"].values():
        spec = item.spec
        assert isinstance(spec, BasketSpec)
        for position, status in enumerate(spec.statuses):
            if status not in index["statuses"]:
                errors.append(_error_at(item, ("statuses", position), "unknown_status", id=status))

    initial = [item for item in index["statuses"].values() if item.spec.initial]  # type: ignore[attr-defined]
    if len(initial) != 1 and index["statuses"]:
        first = next(iter(index["statuses"].values()))
        errors.append(SchemaError(first.file, first.line, "statuses", "initial_status_count", {"count": len(initial)}))

    for section in ("departments", "registers", "mail_types", "statuses"):
        if not index[section]:
            errors.append(SchemaError("", 0, section, "section_empty"))


def _check_circuits(index: dict[str, dict[str, _Item]], errors: list[SchemaError]) -> None:
    for item in index["circuits"].values():
        spec = item.spec
        assert isinstance(spec, CircuitModelSpec)
        for position, code in enumerate(spec.departments):
            if code not in index["departments"]:
                errors.append(_error_at(item, ("departments", position), "unknown_department", code=code))
        for position, type_id in enumerate(spec.mail_types):
            if type_id not in index["mail_types"]:
                errors.append(_error_at(item, ("mail_types", position), "unknown_mail_type", id=type_id))
        if spec.status_after_signature not in index["statuses"]:
            errors.append(
                _error_at(item, ("status_after_signature",), "unknown_status", id=spec.status_after_signature)
            )


def _check_templates(
    index: dict[str, dict[str, _Item]], errors: list[SchemaError], files_root: Path | None
) -> None:
    """Check a template's references, and with ``files_root`` its .docx files (see app.documents.rendering).

    As in check_processing_sections, references into a section that already
    has an error are not checked.
    """
    broken = {error.key.split("[")[0].split(".")[0] for error in errors}
    for item in index["templates"].values():
        spec = item.spec
        assert isinstance(spec, TemplateSpec)
        for position, code in enumerate(spec.departments):
            if code not in index["departments"] and "departments" not in broken:
                errors.append(_error_at(item, ("departments", position), "unknown_department", code=code))
        for position, type_id in enumerate(spec.mail_types):
            if type_id not in index["mail_types"] and "mail_types" not in broken:
                errors.append(_error_at(item, ("mail_types", position), "unknown_mail_type", id=type_id))
        if files_root is None:
            continue
        for language in spec.languages:
            errors.extend(_check_template_file(item, spec, language, files_root))


def _check_template_file(item: _Item, spec: TemplateSpec, language: str, files_root: Path) -> list[SchemaError]:
    from app.documents.rendering import TemplateInvalid, check_template

    relative = spec.files.get(language) or ""
    path = files_root / relative
    if not path.is_file():
        return [_error_at(item, ("files", language), "template_file_missing", path=relative)]
    try:
        check_template(path.read_bytes(), spec.kind)
    except TemplateInvalid as invalid:
        return [_error_at(item, ("files", language), f"template_{invalid.code}", path=relative, **invalid.params)]
    return []


def compute_checksum(sources: Iterable[SourceFile]) -> str:
    """Return the SHA-256 of the files' names and texts, in name order."""
    digest = hashlib.sha256()
    for source in sorted(sources, key=lambda item: item.name):
        digest.update(source.name.encode("utf-8") + b"\0" + source.text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def read_sources(directory: Path) -> list[SourceFile]:
    """Read every ``*.yaml`` / ``*.yml`` file below ``directory``, sorted by path.

    Raises LoadFailed when the directory is missing or a file is not UTF-8.
    """
    if not directory.is_dir():
        raise LoadFailed([SchemaError(str(directory), 0, "", "no_directory")])
    paths = sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())
    sources, errors = [], []
    for path in paths:
        name = path.relative_to(directory).as_posix()
        data = path.read_bytes()
        try:
            sources.append(SourceFile(name, data.decode("utf-8")))
        except UnicodeDecodeError as error:
            line = data[:error.start].count(b"\n") + 1
            errors.append(SchemaError(name, line, "", "not_utf8", {"byte": f"0x{data[error.start]:02x}"}))
    if errors:
        raise LoadFailed(errors)
    return sources


# The errors naming an id that no valid item declares, with the section and the parameter of that id.
_UNKNOWN_REFERENCES = {
    "unknown_department": ("departments", "code"),
    "unknown_mail_type": ("mail_types", "id"),
    "unknown_status": ("statuses", "id"),
    "unknown_distribution_list": ("distribution_lists", "id"),
    "unknown_action": ("actions", "id"),
    "unknown_reminder_plan": ("reminder_plans", "id"),
}


def _refers_to_invalid(error: SchemaError, invalid: dict[str, set[str]]) -> bool:
    """Tell whether ``error`` reports as unknown an item that is declared but has errors of its own."""
    reference = _UNKNOWN_REFERENCES.get(error.code)
    return reference is not None and error.params.get(reference[1]) in invalid[reference[0]]


def load_configuration(sources: list[SourceFile], files_root: Path | None = None) -> Configuration:
    """Validate ``sources`` and return the Configuration, or raise LoadFailed with every error.

    With ``files_root`` (the schemas directory), the files the schemas name,
    such as document templates, are checked too.
    """
    errors: list[SchemaError] = []
    items: list[_Item] = []
    invalid: dict[str, set[str]] = {section: set() for section in SECTION_SPECS}
    for source in sources:
        data, positions = _parse_file(source, errors)
        if data is not None:
            items.extend(_validate_sections(source, data, positions, errors, invalid))

    index = _index_items(items, errors)
    _check_departments(index["departments"], errors)
    _check_mail_types(index, errors)
    _check_reminder_plans(index["reminder_plans"], errors)
    _check_references(index, errors)
    check_processing_sections(index, errors, _error_at)
    _check_circuits(index, errors)
    _check_templates(index, errors, files_root)
    if errors:
        raise LoadFailed([error for error in errors if not _refers_to_invalid(error, invalid)])

    configuration = Configuration(checksum=compute_checksum(sources))
    for section in SECTION_SPECS:
        setattr(configuration, section, {key: item.spec for key, item in index[section].items()})
    return configuration


def load_directory(directory: Path) -> Configuration:
    """Read and validate the schema files of ``directory``."""
    return load_configuration(read_sources(directory), files_root=directory)

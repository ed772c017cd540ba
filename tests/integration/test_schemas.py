"""The schema loader refuses broken files with file:line and applies nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app.configuration.loader import LoadFailed, load_directory
from app.configuration.models import SchemaVersion
from app.configuration.operations import apply_directory
from app.extensions import db
from app.organisation.models import Department

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def schemas_copy(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", target)
    return target


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not found in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def _errors(directory: Path) -> list:
    with pytest.raises(LoadFailed) as failure:
        load_directory(directory)
    return failure.value.errors


def test_demo_schemas_are_valid(app_context):
    configuration = load_directory(REPO / "schemas")
    assert len(configuration.departments) >= 15
    assert len(configuration.mail_types) >= 8
    assert {spec.category for spec in configuration.mail_types.values()} == {"incoming", "outgoing", "internal"}


def test_department_tree_has_three_levels(app_context):
    configuration = load_directory(REPO / "schemas")
    depth = {}
    for code, spec in configuration.departments.items():
        level, parent = 1, spec.parent
        while parent:
            level, parent = level + 1, configuration.departments[parent].parent
        depth[code] = level
    assert max(depth.values()) == 3


def test_bad_indentation_names_line(app_context, schemas_copy):
    path = schemas_copy / "departments.yaml"
    _replace(path, "  - code: SG-RH\n    parent: SG", "  - code: SG-RH\n   parent: SG")
    errors = _errors(schemas_copy)
    assert errors[0].file == "departments.yaml"
    assert errors[0].code == "yaml_indentation"
    broken_line = _line_of(path, "code: SG-RH") + 1
    assert broken_line <= errors[0].line <= broken_line + 1


@pytest.mark.parametrize(("text", "line", "french"), [
    ("departments:\n\t- code: ZZ\n", 2, "un caractère de tabulation : indentez avec des espaces seulement"),
    ("departments:\n  - code: ZZ\n    labels:\n      fr: Objet: demande\n", 4, "deux-points là où aucun n'était attendu"),
    ('departments:\n  - code: "ZZ\n    parent: SG\n', 2, "un guillemet ouvert sur cette ligne n'est pas refermé"),
    ('departments:\n  - code: ZZ\n    labels: {fr: "^\\d{5}$"}\n', 3, "une barre oblique inversée dans un texte entre guillemets"),
    ("departments:\n  - code: ZZ\n    email: 'accueil d'un service'\n    parent: SG\n", 3,
     "du texte suit un guillemet fermant, sur cette ligne ou au-dessus"),
])
def test_yaml_mistakes_explained_in_french(app_context, schemas_copy, text, line, french):
    (schemas_copy / "zz.yaml").write_text(text, encoding="utf-8")
    error = _errors(schemas_copy)[0]
    with force_locale("fr"):
        assert str(error).startswith(f"zz.yaml:{line}: {french}")


def test_file_not_in_utf8_named_with_its_line(app_context, schemas_copy):
    (schemas_copy / "zz.yaml").write_bytes('departments:\n  - code: ZZ\n    labels: {fr: "Bureau des élections"}\n'.encode("latin-1"))
    error = _errors(schemas_copy)[0]
    with force_locale("fr"):
        assert str(error) == "zz.yaml:3: le fichier n'est pas en UTF-8 : enregistrez-le de nouveau en UTF-8 (l'octet 0xe9 est illisible)"


def test_missing_directory_named(app_context, tmp_path):
    error = _errors(tmp_path / "absent")[0]
    assert error.code == "no_directory"
    assert str(error.file).endswith("absent")


def test_accepted_values_listed_in_the_language(app_context, schemas_copy):
    _replace(schemas_copy / "mail_types" / "incoming.yaml", "category: incoming", "category: incomin")
    error = _errors(schemas_copy)[0]
    with force_locale("fr"):
        assert "'incoming', 'outgoing' ou 'internal'" in str(error)
    with force_locale("en"):
        assert "'incoming', 'outgoing' or 'internal'" in str(error)


def test_unknown_key_names_file_line_key(app_context, schemas_copy):
    path = schemas_copy / "mail_types" / "incoming.yaml"
    _replace(path, "    default_department: DMI-SN\n", "    default_department: DMI-SN\n    delai: 12\n")
    errors = _errors(schemas_copy)
    assert len(errors) == 1
    assert errors[0].file == "mail_types/incoming.yaml"
    assert errors[0].line == _line_of(path, "delai: 12")
    assert errors[0].key == "mail_types[1].delai"
    assert errors[0].code == "extra_forbidden"


def test_missing_department_reference(app_context, schemas_copy):
    path = schemas_copy / "mail_types" / "incoming.yaml"
    _replace(path, "default_department: DMI-SN", "default_department: DMI-XX")
    errors = _errors(schemas_copy)
    assert [error.code for error in errors] == ["unknown_department"]
    assert errors[0].line == _line_of(path, "DMI-XX")
    with force_locale("fr"):
        assert "DMI-XX" in errors[0].message()


def test_duplicate_id_across_files(app_context, schemas_copy):
    extra = schemas_copy / "mail_types" / "extra.yaml"
    extra.write_text(
        "mail_types:\n"
        "  - id: internal_memo\n"
        "    category: internal\n"
        "    labels: {fr: \"Doublon\", en: \"Duplicate\"}\n",
        encoding="utf-8",
    )
    errors = _errors(schemas_copy)
    assert [error.code for error in errors] == ["duplicate_id"]
    # Files are read in name order, so the second declaration is in outgoing_internal.yaml.
    assert errors[0].file == "mail_types/outgoing_internal.yaml"
    assert errors[0].line == _line_of(schemas_copy / "mail_types" / "outgoing_internal.yaml", "id: internal_memo")
    assert errors[0].params["other"] == "mail_types/extra.yaml:2"


def test_department_cycle_is_refused(app_context, schemas_copy):
    path = schemas_copy / "departments.yaml"
    _replace(path, "  - code: CAB\n", "  - code: CAB\n    parent: CAB-COM\n")
    codes = [error.code for error in _errors(schemas_copy)]
    assert "department_cycle" in codes


def test_duplicate_yaml_key_is_refused(app_context, schemas_copy):
    path = schemas_copy / "registers.yaml"
    _replace(path, '    format: "PREF75/{year}/A/{number:06d}"\n', '    format: "PREF75/{year}/A/{number:06d}"\n    format: "X/{number}"\n')
    errors = _errors(schemas_copy)
    assert errors[0].code == "duplicate_key"
    assert errors[0].line == _line_of(path, "X/{number}")


def test_bad_register_format_is_refused(app_context, schemas_copy):
    path = schemas_copy / "registers.yaml"
    _replace(path, "PREF75/{year}/D/{number:06d}", "PREF75/{annee}/D/{number:06d}")
    errors = _errors(schemas_copy)
    assert errors[0].key == "registers[1].format"


def test_messages_in_french_and_english(app_context, schemas_copy):
    path = schemas_copy / "mail_types" / "incoming.yaml"
    _replace(path, "default_department: DMI-SN", "default_department: DMI-XX")
    error = _errors(schemas_copy)[0]
    with force_locale("en"):
        english = str(error)
    with force_locale("fr"):
        french = str(error)
    assert english.startswith("mail_types/incoming.yaml:")
    assert "unknown department" in english
    assert french.startswith("mail_types/incoming.yaml:")
    assert french != english


def test_broken_files_apply_nothing(app_context, schemas_copy):
    versions_before = db.session.execute(select(func.count()).select_from(SchemaVersion)).scalar_one()
    labels_before = db.session.execute(select(Department.code, Department.label_fr)).all()
    _replace(schemas_copy / "departments.yaml", "Cabinet du préfet", "Cabinet renommé")
    _replace(schemas_copy / "mail_types" / "incoming.yaml", "default_department: DMI-SN", "default_department: NOPE")

    with pytest.raises(LoadFailed):
        apply_directory(schemas_copy)

    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(SchemaVersion)).scalar_one() == versions_before
    assert db.session.execute(select(Department.code, Department.label_fr)).all() == labels_before


def test_same_files_make_no_new_version(app_context):
    result = apply_directory(REPO / "schemas")
    assert result.changed is False


def test_cli_check_reports_error(app, schemas_copy):
    _replace(schemas_copy / "mail_types" / "incoming.yaml", "default_department: DMI-SN", "default_department: DMI-XX")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["schemas", "check", "--dir", str(schemas_copy), "--lang", "en"])
    assert result.exit_code == 1
    assert "mail_types/incoming.yaml:" in result.output
    assert "nothing was applied" in result.output


def test_removals_the_register_still_uses_are_named(app_context):
    from app.configuration.operations import removals_in_use
    from app.mail.operations import register_mail
    from tests.conftest import user_context
    from tests.integration.test_registration import _residence_request

    register_mail(user_context("courrier"), _residence_request())
    configuration = load_directory(REPO / "schemas")
    del configuration.departments["DMI-SSE-BPT"]
    del configuration.mail_types["residence_permit_request"]

    errors = {error.key: error for error in removals_in_use(configuration)}

    assert errors["departments.DMI-SSE-BPT"].params["mails"] == 1
    assert errors["departments.DMI-SSE-BPT"].params["users"] >= 1
    assert errors["mail_types.residence_permit_request"].params["mails"] == 1
    with force_locale("fr"):
        assert str(errors["mail_types.residence_permit_request"]).startswith(
            "schemas [mail_types.residence_permit_request]: le type de courrier residence_permit_request est retiré"
        )


def test_department_with_agents_not_removed(app_context, schemas_copy):
    from app.organisation.models import UserDepartment
    from tests.conftest import user_context

    _replace(schemas_copy / "departments.yaml", "departments:\n", (
        'departments:\n  - code: SG-ZZ\n    parent: SG\n    labels: {fr: "Bureau provisoire", en: "Provisional office"}\n'
    ))
    apply_directory(schemas_copy)
    zz = db.session.execute(select(Department).where(Department.code == "SG-ZZ")).scalar_one()
    membership = UserDepartment(user_id=user_context("sejour").user_id, department_id=zz.id)
    db.session.add(membership)
    db.session.commit()
    versions = db.session.execute(select(func.count()).select_from(SchemaVersion)).scalar_one()
    try:
        with pytest.raises(LoadFailed) as failure:
            apply_directory(REPO / "schemas")
        assert [error.code for error in failure.value.errors] == ["department_in_use"]
        assert db.session.execute(select(func.count()).select_from(SchemaVersion)).scalar_one() == versions
        assert db.session.get(Department, zz.id).active
    finally:
        db.session.delete(membership)
        db.session.commit()
    apply_directory(REPO / "schemas")
    assert not db.session.get(Department, zz.id).active


def test_invalid_item_not_reported_unknown(app_context, schemas_copy):
    path = schemas_copy / "reminder_plans.yaml"
    _replace(path, "{when: before, working_days: 3, recipients: [assignee]}", "{when: before, working_days: 3, recipients: [agent]}")

    errors = _errors(schemas_copy)

    assert {error.file for error in errors} == {"reminder_plans.yaml"}
    assert "unknown_reminder_plan" not in {error.code for error in errors}


def test_versions_page_names_the_files_each_version_changed(app, client_as, schemas_copy):
    with app.app_context():
        _replace(schemas_copy / "departments.yaml", "Bureau du courrier", "Bureau du courrier et des archives")
        number = apply_directory(schemas_copy, comment="Le bureau du courrier garde les archives").version
        try:
            page = client_as("admin").get("/admin/schemas/").get_data(as_text=True)
        finally:
            apply_directory(REPO / "schemas")
    row = page.split(f'<tr data-version="{number}">', 1)[1].split("</tr>", 1)[0]
    assert "Le bureau du courrier garde les archives" in row
    assert "Modifiés : <code>departments.yaml</code>" in row
    assert "la commande flask schemas apply" in row
    assert client_as("sejour").get("/admin/schemas/").status_code == 403


def test_cli_apply_records_who_applied(app, schemas_copy):
    runner = app.test_cli_runner()
    _replace(schemas_copy / "departments.yaml", "Bureau du courrier", "Bureau du courrier et des archives")

    unknown = runner.invoke(args=["schemas", "apply", "--dir", str(schemas_copy), "--by", "inconnu", "--lang", "en"])
    applied = runner.invoke(args=["schemas", "apply", "--dir", str(schemas_copy), "--by", "admin"])
    try:
        assert unknown.exit_code == 1
        assert "No account has the login inconnu: nothing was applied." in unknown.output
        assert applied.exit_code == 0, applied.output
        with app.app_context():
            latest = db.session.execute(select(SchemaVersion).order_by(SchemaVersion.number.desc()).limit(1)).scalar_one()
            admin = app.appbuilder.sm.find_user(username="admin")
            assert latest.applied_by_id == admin.id
    finally:
        assert runner.invoke(args=["schemas", "apply", "--dir", str(REPO / "schemas")]).exit_code == 0


def test_department_of_inactive_agents_only_removed(app, app_context, schemas_copy):
    from flask_appbuilder.security.sqla.models import User

    from app.organisation.models import UserDepartment

    _replace(schemas_copy / "departments.yaml", "departments:\n", (
        'departments:\n  - code: SG-ZY\n    parent: SG\n    labels: {fr: "Bureau fermé", en: "Closed office"}\n'
    ))
    apply_directory(schemas_copy)
    zy = db.session.execute(select(Department).where(Department.code == "SG-ZY")).scalar_one()
    security = app.appbuilder.sm
    former = security.add_user("ancien.agent", "Anne", "Ancienne", "ancienne@example.org", [security.find_role("agent")],
                               password="mot-de-passe-assez-long")
    former.active = False
    db.session.add(UserDepartment(user_id=former.id, department_id=zy.id, is_primary=True))
    db.session.commit()
    try:
        apply_directory(REPO / "schemas")
        assert not db.session.get(Department, zy.id).active
    finally:
        db.session.execute(UserDepartment.__table__.delete().where(UserDepartment.user_id == former.id))
        db.session.delete(db.session.get(User, former.id))
        db.session.commit()

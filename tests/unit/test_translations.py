"""The gettext catalogs: complete in French, and preferred over Flask-AppBuilder's.

No Flask application is needed: the catalogs are compiled with Babel and read
with ``babel.support.Translations``.  Flask-Babel 4 merges the catalogs of
BABEL_TRANSLATION_DIRECTORIES in order, later ones winning, and
Flask-AppBuilder puts its own directory first; ``merged_french`` repeats that
merge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import flask_appbuilder
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations

from app.core.fab_strings import FAB_STRINGS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "i18n.sh"
FAB_DIR = Path(flask_appbuilder.__file__).parent
FAB_TRANSLATIONS = FAB_DIR / "translations"
NBSP = "\u00a0"

# Our French for msgids written in Estafette's code.
OWN_FRENCH = {
    "Register mail": "Enregistrer un courrier",
    "Handling department": "Service traitant",
    "Assignee": "Attributaire",
    "Baskets": "Bannettes",
    "working days": "jours ouvrés",
    "calendar days": "jours calendaires",
}

# Flask-AppBuilder msgids whose French in Flask-AppBuilder 5.3.0 we replace.
# Its templates write ":" right after the first two, hence the no-break space.
FAB_OVERRIDES = {
    "Record Count": "Nombre de résultats" + NBSP,
    "Enter your login and password below": "Saisissez votre identifiant et votre mot de passe ci-dessous" + NBSP,
    "List Users": "Utilisateurs",
    "Sign In": "Connexion",
    "Logout": "Déconnexion",
    "Invalid login. Please try again.": "Identifiant ou mot de passe incorrect. Veuillez réessayer.",
}


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    """Run ``i18n.sh check`` of the tree at ``root`` with this interpreter's pybabel."""
    bin_dir = Path(sys.executable).parent
    environment = {**os.environ, "PYBABEL": str(bin_dir / "pybabel"), "PYBABEL_PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(root / "scripts" / "i18n.sh"), "check"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def compile_catalog(locale: str, directory: Path) -> Translations:
    """Compile ``translations/<locale>`` into ``directory`` and load it."""
    with (REPO / "translations" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    target = directory / locale / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "messages.mo").open("wb") as handle:
        write_mo(handle, catalog)
    return Translations.load(str(directory), [locale])


@pytest.fixture()
def french(tmp_path: Path) -> Translations:
    return compile_catalog("fr", tmp_path)


@pytest.fixture()
def merged_french(french: Translations) -> Translations:
    merged = Translations.load(str(FAB_TRANSLATIONS), ["fr"])
    merged.merge(french)
    return merged


def copy_tree_for_check(destination: Path) -> Path:
    """Copy what ``i18n.sh check`` reads, so that a test may break the copy's catalogs."""
    ignore = shutil.ignore_patterns("__pycache__", "static", "*.mo")
    shutil.copytree(REPO / "app", destination / "app", ignore=ignore)
    shutil.copytree(REPO / "translations", destination / "translations", ignore=ignore)
    shutil.copytree(REPO / "scripts", destination / "scripts")
    for name in ("babel.cfg", "pyproject.toml"):
        shutil.copy(REPO / name, destination / name)
    return destination


def edit_french_msgstr(root: Path, msgid: str, msgstr: str, fuzzy: bool = False) -> None:
    path = root / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    catalog[msgid].string = msgstr
    if fuzzy:
        catalog[msgid].flags.add("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog)


# --- scripts/i18n.sh check ------------------------------------------------


def test_check_passes_on_repository() -> None:
    result = run_check(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_rejects_untranslated_msgid(tmp_path: Path) -> None:
    root = copy_tree_for_check(tmp_path)
    edit_french_msgstr(root, "Register mail", "")

    result = run_check(root)

    assert result.returncode == 1
    assert "'Register mail'" in result.stderr


def test_check_rejects_fuzzy_entry(tmp_path: Path) -> None:
    root = copy_tree_for_check(tmp_path)
    edit_french_msgstr(root, "Register mail", "Enregistrer un courrier", fuzzy=True)

    result = run_check(root)

    assert result.returncode == 1
    assert "fuzzy entries" in result.stderr
    assert "'Register mail'" in result.stderr


def test_check_rejects_unknown_placeholder(tmp_path: Path) -> None:
    root = copy_tree_for_check(tmp_path)
    edit_french_msgstr(
        root, "Mail registered under number %(chrono)s.", "Courrier enregistré sous le numéro %(numero)s."
    )

    result = run_check(root)

    assert result.returncode == 1
    assert "unknown named placeholder 'numero'" in result.stderr
    assert "pybabel compile failed" in result.stderr


def test_check_rejects_dropped_placeholder(tmp_path: Path) -> None:
    root = copy_tree_for_check(tmp_path)
    edit_french_msgstr(root, "Mail registered under number %(chrono)s.", "Courrier enregistré.")

    result = run_check(root)

    assert result.returncode == 1
    assert "placeholders differ" in result.stderr
    assert "'Mail registered under number %(chrono)s.'" in result.stderr


def test_check_rejects_stray_percent(tmp_path: Path) -> None:
    root = copy_tree_for_check(tmp_path)
    edit_french_msgstr(root, "Register mail", "Enregistrer 100 % des courriers")

    result = run_check(root)

    assert result.returncode == 1
    assert "'%' that its msgid does not have" in result.stderr


def test_check_rejects_missing_msgid(tmp_path: Path) -> None:
    root = copy_tree_for_check(tmp_path)
    (root / "app" / "new_view.py").write_text(
        'from flask_babel import lazy_gettext as _l\n\nTITLE = _l("A title not yet in the catalogs")\n'
    )

    result = run_check(root)

    assert result.returncode == 1
    assert "'A title not yet in the catalogs'" in result.stderr


# --- French catalog -------------------------------------------------------


@pytest.mark.parametrize(("msgid", "expected"), sorted(OWN_FRENCH.items()))
def test_french_translates_own_msgid(french: Translations, msgid: str, expected: str) -> None:
    assert french.gettext(msgid) == expected


def test_french_keeps_placeholder(french: Translations) -> None:
    text = french.gettext("Mail registered under number %(chrono)s.") % {"chrono": "2026-A-000123"}
    assert text == "Courrier enregistré sous le numéro chrono 2026-A-000123."


@pytest.mark.parametrize(("msgid", "expected"), sorted(FAB_OVERRIDES.items()))
def test_french_overrides_flask_appbuilder(merged_french: Translations, msgid: str, expected: str) -> None:
    assert merged_french.gettext(msgid) == expected


@pytest.mark.parametrize("msgid", sorted(FAB_OVERRIDES))
def test_flask_appbuilder_french_differs(msgid: str) -> None:
    """Guard the override tests: they prove nothing if Flask-AppBuilder already had our text."""
    fab_french = Translations.load(str(FAB_TRANSLATIONS), ["fr"])
    assert fab_french.gettext(msgid) != FAB_OVERRIDES[msgid]


# --- English catalog ------------------------------------------------------


def test_english_falls_back_to_msgid(tmp_path: Path) -> None:
    english = compile_catalog("en", tmp_path)
    assert english.gettext("Register mail") == "Register mail"


def test_english_rewords_flask_appbuilder(tmp_path: Path) -> None:
    english = compile_catalog("en", tmp_path)
    assert english.gettext("Access is Denied") == "Access denied."


# --- app/core/fab_strings.py ----------------------------------------------


def test_fab_strings_exist_in_flask_appbuilder() -> None:
    """A msgid misspelt in fab_strings.py would translate nothing, silently."""
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "lazy_formatter_gettext": None}
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    fab_msgids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(FAB_DIR), method_map=method_map, keywords=keywords
    ):
        fab_msgids.add(message if isinstance(message, str) else message[0])

    ours = [str(text._args[0]) for text in FAB_STRINGS]
    unknown = [msgid for msgid in ours if msgid not in fab_msgids]

    assert unknown == []
    assert len(ours) == len(set(ours)), "fab_strings.py lists a msgid twice"

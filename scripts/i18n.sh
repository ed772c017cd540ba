#!/usr/bin/env bash
# Maintain the gettext catalogs in translations/.
#
#   scripts/i18n.sh extract   write translations/messages.pot from app/ (see babel.cfg)
#   scripts/i18n.sh update    extract, then merge the template into the fr and en catalogs
#   scripts/i18n.sh compile   build the .mo files that the application loads
#   scripts/i18n.sh check     exit 1 if a msgid of the code is missing from a catalog,
#                             fuzzy, untranslated in French, or fails to compile
#
# Environment: PYBABEL is the pybabel program (default .venv/bin/pybabel, a
# relative path being relative to the repository root, a bare name looked up
# in PATH) and PYBABEL_PYTHON the interpreter, with Babel installed, that runs
# the check (default: the python or python3 beside PYBABEL).
#
# French is the first language, so every msgid needs a French msgstr.  The
# English catalog holds every msgid too, but its msgstr may stay empty because
# the msgids are English.  An empty or fuzzy msgstr is left out of the .mo, and
# Flask-Babel then shows Flask-AppBuilder's own translation of that msgid if it
# has one (its directory comes first in BABEL_TRANSLATION_DIRECTORIES and ours
# overrides it), else the msgid itself.
#
# Locations are written as file names without line numbers (--add-location=file):
# translators still see where a string comes from, and moving code does not
# rewrite the catalogs.  The .mo files are git-ignored: run `compile` after
# each checkout and before starting the application.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
if [[ "$PYBABEL" != */* ]]; then
    PYBABEL="$(command -v "$PYBABEL" || echo "$PYBABEL")"
fi
if [[ -z "${PYBABEL_PYTHON:-}" ]]; then
    PYBABEL_PYTHON="$(dirname "$PYBABEL")/python"
    [[ -x "$PYBABEL_PYTHON" ]] || PYBABEL_PYTHON="$(dirname "$PYBABEL")/python3"
fi
TRANSLATIONS=translations
TEMPLATE="$TRANSLATIONS/messages.pot"
LOCALES=(fr en)
KEYWORDS=(-k _l -k lazy_gettext -k _ -k gettext -k ngettext:1,2 -k lazy_ngettext:1,2)

usage() {
    echo "usage: $0 extract|update|compile|check" >&2
    exit 2
}

require_tools() {
    if [[ ! -x "$PYBABEL" ]]; then
        echo "error: pybabel not found at '$PYBABEL'; run 'make venv' or set PYBABEL" >&2
        exit 2
    fi
    if [[ "$1" == check && ! -x "$PYBABEL_PYTHON" ]]; then
        echo "error: python not found at '$PYBABEL_PYTHON'; set PYBABEL_PYTHON to the interpreter that has Babel" >&2
        exit 2
    fi
}

project_version() {
    sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml
}

# Extract the msgids of app/ into the file $1.
extract_to() {
    "$PYBABEL" -q extract -F babel.cfg "${KEYWORDS[@]}" \
        --add-location=file --project=Estafette --version="$(project_version)" \
        -o "$1" .
}

# Write messages.pot, but leave the file alone when only its creation date changed.
extract() {
    local fresh
    fresh="$(mktemp)"
    extract_to "$fresh"
    if [[ -f "$TEMPLATE" ]] && diff -q -I '^"POT-Creation-Date:' "$TEMPLATE" "$fresh" >/dev/null; then
        rm -f "$fresh"
        echo "$TEMPLATE is up to date"
    else
        mv "$fresh" "$TEMPLATE"
        echo "wrote $TEMPLATE ($(grep -c '^msgid ' "$TEMPLATE") entries including the header)"
    fi
}

update() {
    extract
    local locale
    for locale in "${LOCALES[@]}"; do
        if [[ -f "$TRANSLATIONS/$locale/LC_MESSAGES/messages.po" ]]; then
            # Entries whose msgid left the code are dropped (git keeps them), and a
            # fuzzy entry shows the msgid it was matched from ("#|") for review.
            # English msgstrs are rare rewordings, so fuzzy matching there would
            # only copy a wrong override: it is turned off for en.
            local matching=()
            [[ "$locale" == en ]] && matching=(--no-fuzzy-matching)
            "$PYBABEL" update -i "$TEMPLATE" -d "$TRANSLATIONS" -l "$locale" \
                --ignore-obsolete --previous --ignore-pot-creation-date ${matching[@]+"${matching[@]}"}
        else
            "$PYBABEL" init -i "$TEMPLATE" -d "$TRANSLATIONS" -l "$locale"
        fi
    done
}

compile() {
    "$PYBABEL" compile -d "$TRANSLATIONS" --statistics
    echo "(the English catalog translates few messages because the msgids are the English texts)"
}

check() {
    local workdir status=0
    workdir="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand $workdir now, while it is set
    trap "rm -rf '$workdir'" EXIT
    extract_to "$workdir/messages.pot"

    "$PYBABEL_PYTHON" - "$workdir/messages.pot" "$TRANSLATIONS" <<'PY' || status=1
"""Compare the msgids of the code with the fr and en catalogs."""

import re
import sys
from pathlib import Path

from babel.messages.pofile import read_po

template_path, translations = Path(sys.argv[1]), Path(sys.argv[2])
# Jinja's newstyle gettext applies "%" to every string of a template, but
# Flask-Babel's gettext only to strings given variables.  So a msgstr may
# contain "%" only if its msgid does, and then each "%" opens "%(name)s" or is "%%".
STRAY_PERCENT = re.compile(r"%(?!\(\w+\)|%)")
# pybabel compile rejects unknown placeholders but accepts a msgstr that drops one.
NAMED_PLACEHOLDER = re.compile(r"%\((\w+)\)")


def placeholders_differ(msgid, form):
    """Compare placeholder names; a plural form may omit the singular's or plural's."""
    expected = set(NAMED_PLACEHOLDER.findall(" ".join(msgid) if isinstance(msgid, tuple) else msgid))
    found = set(NAMED_PLACEHOLDER.findall(form))
    return not found <= expected if isinstance(msgid, tuple) else found != expected


def has_percent_problem(msgid, form):
    source = " ".join(msgid) if isinstance(msgid, tuple) else msgid
    if "%" not in source:
        return "%" in form
    # "%%" is a literal percent sign: removed first, so that its second "%" is not read as stray.
    return "%(" in source and STRAY_PERCENT.search(form.replace("%%", "")) is not None


def singular(msgid):
    return msgid[0] if isinstance(msgid, tuple) else msgid


def read_catalog(path, locale=None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def msgstr_forms(message):
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def fail(title, ids):
    print(f"{title} ({len(ids)}):", file=sys.stderr)
    for msgid in ids:
        print(f"  {msgid!r}", file=sys.stderr)


template = read_catalog(template_path)
code_ids = [message.id for message in template if message.id]
problems = 0

for locale, translation_required in (("fr", True), ("en", False)):
    po_path = translations / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.is_file():
        print(f"error: {po_path} is missing; run scripts/i18n.sh update", file=sys.stderr)
        problems += 1
        continue
    catalog = read_catalog(po_path, locale)
    missing, untranslated, fuzzy, stray, mismatched = [], [], [], [], []
    for msgid in code_ids:
        message = catalog.get(msgid)
        if message is None:
            missing.append(msgid)
            continue
        if message.fuzzy:
            fuzzy.append(msgid)
        forms = msgstr_forms(message)
        if translation_required and not all(forms):
            untranslated.append(msgid)
        if any(has_percent_problem(msgid, form) for form in forms if form):
            stray.append(msgid)
        if any(placeholders_differ(msgid, form) for form in forms if form):
            mismatched.append(msgid)
    if catalog.fuzzy:
        print(f"error: {po_path} is marked fuzzy in its header; pybabel compile would skip it", file=sys.stderr)
        problems += 1
    for title, ids in (
        (f"error: msgids of the code missing from {po_path}; run scripts/i18n.sh update", missing),
        (f"error: msgids without a translation in {po_path}", untranslated),
        (f"error: fuzzy entries in {po_path}; review each translation and remove its fuzzy flag", fuzzy),
        (f"error: msgstr with a '%' that its msgid does not have in {po_path}", stray),
        (f"error: msgstr whose %(name)s placeholders differ from its msgid's in {po_path}", mismatched),
    ):
        if ids:
            fail(title, ids)
            problems += 1
    code_keys = {singular(msgid) for msgid in code_ids}
    extra = [message.id for message in catalog if message.id and singular(message.id) not in code_keys]
    if extra:
        print(f"note: {len(extra)} msgid(s) of {po_path} are no longer in the code; "
              "scripts/i18n.sh update removes them", file=sys.stderr)

sys.exit(1 if problems else 0)
PY

    # pybabel compile runs Babel's placeholder checks on python-format entries
    # and exits 1 on an error.  It writes into the temporary directory, so
    # check leaves the repository unchanged.
    local locale
    for locale in "${LOCALES[@]}"; do
        local po="$TRANSLATIONS/$locale/LC_MESSAGES/messages.po"
        [[ -f "$po" ]] || continue
        if ! "$PYBABEL" compile -i "$po" -o "$workdir/$locale.mo" -l "$locale" --statistics; then
            echo "error: pybabel compile failed for $po (see the errors above)" >&2
            status=1
        fi
    done

    if [[ $status -ne 0 ]]; then
        echo "i18n check failed" >&2
        return 1
    fi
    echo "i18n check passed: ${#LOCALES[@]} catalogs cover every msgid of the code"
}

[[ $# -eq 1 ]] || usage
require_tools "$1"
case "$1" in
    extract) extract ;;
    update) update ;;
    compile) compile ;;
    check) check ;;
    *) usage ;;
esac

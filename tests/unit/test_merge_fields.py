"""Merge fields and template rendering, without the application."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import docx
import pytest

from app.documents.fields import ACKNOWLEDGEMENT_REQUIRED_FIELDS, MERGE_FIELDS, clean_text, long_date
from app.documents.rendering import (
    RenderingFailed,
    TemplateInvalid,
    check_template,
    document_text,
    find_placeholders,
    render_template,
)
from tests.docx_samples import simple_template, split_placeholder_template


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        (date(2026, 12, 4), "fr", "4 décembre 2026"),
        (date(2026, 12, 4), "en", "4 December 2026"),
        (date(2026, 5, 1), "fr", "1er mai 2026"),
        (date(2026, 5, 1), "en", "1 May 2026"),
        (date(2027, 8, 15), "fr", "15 août 2027"),
        (None, "fr", ""),
    ],
)
def test_long_date(value, language, expected):
    assert long_date(value, language) == expected


def test_clean_text_keeps_breaks_drops_controls():
    assert clean_text("a\r\nb\rc\x00d\x0be\tf\x07") == "a\nb\ncde\tf"
    assert clean_text(None) == ""


def test_registry_fields_have_descriptions():
    for field in MERGE_FIELDS.values():
        assert field.description("fr")
        assert field.description("en")
    assert set(ACKNOWLEDGEMENT_REQUIRED_FIELDS) <= set(MERGE_FIELDS)


def test_escaping_and_line_breaks():
    values = {name: "" for name in MERGE_FIELDS}
    values["mail_subject"] = "A & B <script>alert(\"x\")</script> l'été"
    values["sender_address"] = "1 rue Haute\n75015 Paris"
    template = simple_template("Objet : {{ mail_subject }}", "{{ sender_address }}")

    result = render_template(template, values)

    with zipfile.ZipFile(io.BytesIO(result)) as archive:
        xml = archive.read("word/document.xml").decode("utf-8")
    assert "<script>" not in xml
    paragraphs = docx.Document(io.BytesIO(result)).paragraphs
    assert paragraphs[0].text == "Objet : A & B <script>alert(\"x\")</script> l'été"
    assert paragraphs[1].text == "1 rue Haute\n75015 Paris"
    assert "<w:br/>" in paragraphs[1]._p.xml


def test_check_names_unknown_field():
    with pytest.raises(TemplateInvalid) as raised:
        check_template(simple_template("{{ registration_number }} {{ nom_inconnu }}"), "reply")
    assert raised.value.code == "unknown_field"
    assert raised.value.params["field"] == "nom_inconnu"


def test_check_acknowledgement_needs_mentions():
    with pytest.raises(TemplateInvalid) as raised:
        check_template(simple_template("{{ arrival_date }}"), "acknowledgement")
    assert raised.value.code == "missing_mention"
    assert raised.value.params["field"] == "department_label"


def test_check_rejects_non_docx_and_bad_syntax():
    with pytest.raises(TemplateInvalid) as not_docx:
        check_template(b"%PDF-1.4 not a template", "reply")
    assert not_docx.value.code == "not_docx"
    with pytest.raises(TemplateInvalid) as syntax:
        check_template(simple_template("{{ registration_number "), "reply")
    assert syntax.value.code == "syntax"


def test_split_template_fields_found():
    used = check_template(split_placeholder_template(), "reply").fields
    assert used == {"registration_number", "department_label", "recipient_name", "arrival_date", "department_phone"}


def test_leftover_placeholder_rejected():
    values = {name: "x" for name in MERGE_FIELDS}
    # A raw block writes "{{ a }}" as text: the output still shows a placeholder, so rendering fails.
    template = simple_template("Réf. {{ registration_number }}", "{% raw %}{{ a }}{% endraw %}")
    with pytest.raises(RenderingFailed) as raised:
        render_template(template, values)
    assert raised.value.leftovers == ["{{ a }}"]


def test_value_with_braces_is_not_a_leftover():
    values = {name: "" for name in MERGE_FIELDS}
    values["mail_subject"] = "Objet {{ étrange }}"
    result = render_template(simple_template("{{ mail_subject }}"), values)
    assert find_placeholders(result) == ["{{ étrange }}"]
    assert document_text(result)[0] == "Objet {{ étrange }}"

"""Fill .docx templates with docxtpl, and check templates before they are accepted.

docxtpl joins a placeholder that Word split over several runs and keeps the
formatting of the run where it starts. It renders the body (text boxes
included, since they are part of the body XML), every header and every
footer. Values are escaped (autoescape) so that ``&``, ``<``, ``>`` and quotes
stay text, and a ``\\n`` in a value becomes a line break.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass

from docx.opc.exceptions import PackageNotFoundError
from docxtpl import DocxTemplate
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from app.core.archives import repack_archive
from app.documents.fields import ACKNOWLEDGEMENT_REQUIRED_FIELDS, MERGE_FIELDS

DOCX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# A placeholder or tag left in the output: the template writer mistyped it or Word split it unusually.
_LEFTOVER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{\{|\{%")
# A run's text, or the end of a paragraph (text boxes nest paragraphs inside paragraphs).
_TEXT_OR_PARAGRAPH_END = re.compile(r"<w:t(?:\s[^>]*)?(?<!/)>(.*?)</w:t>|(</w:p>)", re.DOTALL)
_TEXT_PARTS = re.compile(r"^word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml$")


class TemplateInvalid(Exception):
    """Error for an unusable template file: ``code`` is the reason and ``params`` the details for the message."""

    def __init__(self, code: str, **params: str):
        super().__init__(f"{code}: {params}")
        self.code = code
        self.params = params


class RenderingFailed(Exception):
    """The filled document still contains placeholders, listed in ``leftovers``."""

    def __init__(self, leftovers: list[str]):
        super().__init__("placeholders left in the document: " + ", ".join(leftovers))
        self.leftovers = leftovers


@dataclass(frozen=True)
class TemplateCheck:
    """The merge fields a template uses."""

    fields: frozenset[str]


def _environment() -> SandboxedEnvironment:
    # Templates come from administrators: the sandbox keeps them from reaching Python internals.
    return SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


def _open(data: bytes) -> DocxTemplate:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise TemplateInvalid("not_docx")
    try:
        return DocxTemplate(io.BytesIO(repack_archive(data)))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        # ValueError covers ArchiveTooLarge.
        raise TemplateInvalid("not_docx", detail=str(exc)) from None


def check_template(data: bytes, kind: str) -> TemplateCheck:
    """Check that ``data`` is a .docx template docxtpl can parse, using only registered merge fields.

    An acknowledgement template must also use every field of
    ACKNOWLEDGEMENT_REQUIRED_FIELDS. Raises TemplateInvalid with code
    ``not_docx``, ``syntax`` (line and detail), ``unknown_field`` (the first
    unknown name) or ``missing_mention`` (the first required field absent).
    """
    template = _open(data)
    try:
        template.init_docx()
        used = template.get_undeclared_template_variables(_environment())
    except TemplateError as exc:
        raise TemplateInvalid("syntax", detail=str(exc.message or exc)) from None
    except (KeyError, ValueError) as exc:
        raise TemplateInvalid("not_docx", detail=str(exc)) from None
    unknown = sorted(used - set(MERGE_FIELDS))
    if unknown:
        raise TemplateInvalid("unknown_field", field=unknown[0], count=str(len(unknown)))
    if kind == "acknowledgement":
        missing = [name for name in ACKNOWLEDGEMENT_REQUIRED_FIELDS if name not in used]
        if missing:
            raise TemplateInvalid("missing_mention", field=missing[0])
    # Render once with sample texts, so that a template that parses but fails to render is caught now.
    render_template(data, {name: "x" for name in MERGE_FIELDS})
    return TemplateCheck(frozenset(used))


def render_template(data: bytes, values: dict[str, str]) -> bytes:
    """Fill the template ``data`` with ``values`` and return the .docx bytes.

    Raises RenderingFailed when a placeholder or tag is still in the output,
    unless the same text comes from one of the values (a subject may contain
    "{{").
    """
    template = _open(data)
    try:
        template.render(values, _environment(), autoescape=True)
    except TemplateError as exc:
        raise TemplateInvalid("syntax", detail=str(exc.message or exc)) from None
    output = io.BytesIO()
    template.save(output)
    result = output.getvalue()
    leftovers = [item for item in find_placeholders(result) if not any(item in value for value in values.values())]
    if leftovers:
        raise RenderingFailed(leftovers)
    return result


def document_text(data: bytes) -> list[str]:
    """Return the text of every paragraph of the body, headers, footers and notes, text boxes included."""
    paragraphs: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in sorted(archive.namelist()):
            if not _TEXT_PARTS.match(name):
                continue
            xml = archive.read(name).decode("utf-8")
            current: list[str] = []
            for match in _TEXT_OR_PARAGRAPH_END.finditer(xml):
                if match.group(2):
                    paragraphs.append(html.unescape("".join(current)))
                    current = []
                elif match.group(1):
                    current.append(match.group(1))
    return paragraphs


def find_placeholders(data: bytes) -> list[str]:
    """Return the ``{{ … }}`` and ``{% … %}`` texts found in a .docx, each paragraph read as one text."""
    found: list[str] = []
    for text in document_text(data):
        found.extend(_LEFTOVER.findall(text))
    return found

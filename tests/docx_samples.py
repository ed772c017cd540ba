"""Build .docx templates for the document tests with python-docx and raw WordprocessingML.

The runs are split by hand, as Word splits them after edits, so that the
tests exercise placeholders that no single run contains.
"""

from __future__ import annotations

import io

from docx import Document
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls

VML = 'xmlns:v="urn:schemas-microsoft-com:vml"'


def add_split_runs(paragraph, parts: list[tuple[str, dict[str, bool]]]) -> None:
    """Append one run per part, each with its own bold/italic flags."""
    for text, formatting in parts:
        run = paragraph.add_run(text)
        run.bold = formatting.get("bold")
        run.italic = formatting.get("italic")


def text_box_run(text: str) -> object:
    """Return a run holding a floating VML text box whose only paragraph contains ``text``."""
    return parse_xml(
        f'<w:r {nsdecls("w")} {VML}><w:pict><v:shape id="estafette_box" type="#_x0000_t202" '
        'style="position:absolute;margin-left:280pt;margin-top:0;width:180pt;height:40pt;z-index:1">'
        f'<v:textbox><w:txbxContent><w:p><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'
        '</w:txbxContent></v:textbox></v:shape></w:pict></w:r>'
    )


def split_placeholder_template(extra_body: list[str] | None = None) -> bytes:
    """Build the template of the split-placeholder tests.

    * body: "Réf. " in italic, then ``{{ registration_number }}`` split over
      three runs (bold, bold, plain);
    * header: ``{{ department_label }}``; footer: ``{{ registration_number }}`` split over two runs;
    * a table row: ``{{ recipient_name }}`` split over two runs, and ``{{ arrival_date }}``;
    * a floating text box: ``{{ department_phone }}``.
    """
    document = Document()
    section = document.sections[0]
    header_paragraph = section.header.paragraphs[0]
    add_split_runs(header_paragraph, [("{{ department", {"bold": True}), ("_label }}", {"bold": True})])
    footer_paragraph = section.footer.paragraphs[0]
    add_split_runs(footer_paragraph, [("Dossier {{ registration", {}), ("_number }}", {"italic": True})])

    paragraph = document.add_paragraph()
    add_split_runs(paragraph, [
        ("Réf. ", {"italic": True}),
        ("{{ regi", {"bold": True}),
        ("stration_", {"bold": True}),
        ("number }}", {}),
        (" — suite", {"italic": True}),
    ])

    table = document.add_table(rows=1, cols=2)
    add_split_runs(table.rows[0].cells[0].paragraphs[0], [("{{ recipient", {"italic": True}), ("_name }}", {})])
    table.rows[0].cells[1].paragraphs[0].add_run("{{ arrival_date }}")

    box_paragraph = document.add_paragraph("Contact : ")
    box_paragraph._p.append(text_box_run("{{ department_phone }}"))

    for text in extra_body or []:
        document.add_paragraph(text)

    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def simple_template(*paragraphs: str) -> bytes:
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()

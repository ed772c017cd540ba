"""Write the default document templates of schemas/templates/ (French and English .docx files).

Run from the repository root: ``.venv/bin/python scripts/make-templates.py``.
The files are committed; this script shows how they were made and rebuilds
them after a change. Placeholders are docxtpl tags: ``{{ field }}`` for a merge
field and ``{%p if field %}`` … ``{%p endif %}`` for paragraphs shown only when
the field has a value. The merge fields are listed on the templates screen
and in app/documents/fields.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

TARGET = Path(__file__).resolve().parent.parent / "schemas" / "templates"

TEXTS = {
    "fr": {
        "reference": "Référence : ",
        "subject": "Objet : ",
        "your_request": "Votre demande reçue le {{ arrival_date }}",
        "affair": "Affaire suivie par : {{ agent_name }}, {{ agent_title }}",
        "contact": "{{ department_phone }} – {{ department_email }}",
        "place_date": "Paris, le {{ today }}",
        "salutation": "{{ recipient_salutation }},",
        "reply_body": (
            "J'ai bien reçu votre courrier relatif à « {{ mail_subject }} », enregistré sous le numéro "
            "{{ registration_number }}. [Rédigez ici la réponse.]"
        ),
        "closing": "Je vous prie d'agréer, {{ recipient_salutation }}, l'expression de ma considération distinguée.",
        # The signatory is chosen in the signature book, after the draft: their name comes with the signature block.
        "authority": "Pour le préfet et par délégation,",
        "ar_title": "ACCUSÉ DE RÉCEPTION",
        "ar_received": (
            "Votre demande « {{ mail_subject }} » ({{ mail_type }}) a été reçue le {{ arrival_date }} et "
            "enregistrée sous le numéro {{ registration_number }}."
        ),
        "ar_department": (
            "Le service chargé de son instruction est le {{ department_label }}, {{ department_address }}, "
            "téléphone {{ department_phone }}, courriel {{ department_email }}."
        ),
        "ar_decision": (
            "En l'absence de réponse de l'administration, le {{ implicit_decision_date }}, au terme d'un délai de "
            "{{ implicit_decision_delay }}, votre demande fera l'objet d'une décision implicite ({{ implicit_decision_regime }})."
        ),
        # For an AR made after that date: the implicit decision has already arisen.
        "ar_decision_passed": (
            "En l'absence de réponse de l'administration, votre demande a fait l'objet d'une décision implicite "
            "({{ implicit_decision_regime }}) le {{ implicit_decision_date }}, au terme d'un délai de {{ implicit_decision_delay }}."
        ),
        "ar_missing_intro": (
            "Votre dossier est incomplet. Les pièces suivantes sont à produire ; le délai mentionné ci-dessus tient "
            "compte de cette demande :"
        ),
        "ar_appeal_intro": "Voies et délais de recours :",
        "ar_footer": "Accusé de réception délivré en application des articles L112-3 et R112-5 du code des relations entre le public et l'administration.",
        "footer": "{{ registration_number }} – {{ department_label }}",
    },
    "en": {
        "reference": "Reference: ",
        "subject": "Subject: ",
        "your_request": "Your request received on {{ arrival_date }}",
        "affair": "Handled by: {{ agent_name }}, {{ agent_title }}",
        "contact": "{{ department_phone }} – {{ department_email }}",
        "place_date": "Paris, {{ today }}",
        "salutation": "Dear {{ recipient_civility }} {{ recipient_name }},",
        "reply_body": (
            "I acknowledge your letter about \"{{ mail_subject }}\", registered under number "
            "{{ registration_number }}. [Write the reply here.]"
        ),
        "closing": "Yours sincerely,",
        "authority": "For the prefect, by delegation,",
        "ar_title": "ACKNOWLEDGEMENT OF RECEIPT",
        "ar_received": (
            "Your request \"{{ mail_subject }}\" ({{ mail_type }}) was received on {{ arrival_date }} and "
            "registered under number {{ registration_number }}."
        ),
        "ar_department": (
            "The department in charge of it is the {{ department_label }}, {{ department_address }}, "
            "phone {{ department_phone }}, e-mail {{ department_email }}."
        ),
        "ar_decision": (
            "Without an answer from the administration, on {{ implicit_decision_date }}, after a delay of "
            "{{ implicit_decision_delay }}, an implicit decision will be made on your request ({{ implicit_decision_regime }})."
        ),
        "ar_decision_passed": (
            "Without an answer from the administration, an implicit decision was made on your request "
            "({{ implicit_decision_regime }}) on {{ implicit_decision_date }}, after a delay of {{ implicit_decision_delay }}."
        ),
        "ar_missing_intro": (
            "Your file is incomplete. Please provide the following documents; the date above takes this request "
            "into account:"
        ),
        "ar_appeal_intro": "Appeal routes and time limits:",
        "ar_footer": "Acknowledgement issued under articles L112-3 and R112-5 of the French code of relations between the public and the administration.",
        "footer": "{{ registration_number }} – {{ department_label }}",
    },
}


def _letterhead(document: Document, texts: dict[str, str]) -> None:
    style = document.styles["Normal"]
    style.font.name = "Liberation Sans"
    style.font.size = Pt(11)
    section = document.sections[0]
    header = section.header.paragraphs[0]
    header.add_run("PRÉFECTURE\n").bold = True
    header.add_run("{{ department_label }}\n{{ department_address }}\n")
    header.add_run(texts["contact"]).italic = True
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.add_run(texts["footer"]).font.size = Pt(8)


def _addressee_block(document: Document, texts: dict[str, str]) -> None:
    block = document.add_paragraph()
    block.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    block.add_run("{{ recipient_civility }} {{ recipient_name }}\n{{ recipient_organisation }}\n{{ recipient_address }}")
    document.add_paragraph(texts["place_date"]).alignment = WD_ALIGN_PARAGRAPH.RIGHT
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].paragraphs[0].add_run(texts["reference"]).bold = True
    table.rows[0].cells[1].paragraphs[0].add_run("{{ registration_number }}")
    table.rows[1].cells[0].paragraphs[0].add_run(texts["subject"]).bold = True
    table.rows[1].cells[1].paragraphs[0].add_run("{{ mail_subject }}")
    document.add_paragraph(texts["affair"]).runs[0].italic = True


def reply(language: str) -> Document:
    texts = TEXTS[language]
    document = Document()
    _letterhead(document, texts)
    _addressee_block(document, texts)
    document.add_paragraph(texts["your_request"])
    document.add_paragraph(texts["salutation"])
    document.add_paragraph(texts["reply_body"])
    document.add_paragraph(texts["closing"])
    signature = document.add_paragraph()
    signature.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    signature.add_run(texts["authority"]).bold = True
    return document


def acknowledgement(language: str) -> Document:
    texts = TEXTS[language]
    document = Document()
    _letterhead(document, texts)
    _addressee_block(document, texts)
    title = document.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    title.add_run(texts["ar_title"]).bold = True
    document.add_paragraph(texts["ar_received"])
    document.add_paragraph(texts["ar_department"])
    document.add_paragraph("{%p if implicit_decision_passed %}")
    document.add_paragraph(texts["ar_decision_passed"])
    document.add_paragraph("{%p else %}")
    document.add_paragraph(texts["ar_decision"])
    document.add_paragraph("{%p endif %}")
    document.add_paragraph("{%p if missing_documents %}")
    document.add_paragraph(texts["ar_missing_intro"])
    document.add_paragraph("{{ missing_documents }}")
    document.add_paragraph("{%p endif %}")
    document.add_paragraph("{%p if appeal_routes %}")
    document.add_paragraph(texts["ar_appeal_intro"]).runs[0].bold = True
    document.add_paragraph("{{ appeal_routes }}")
    document.add_paragraph("{%p endif %}")
    note = document.add_paragraph()
    note.add_run(texts["ar_footer"]).font.size = Pt(8)
    return document


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    for language in ("fr", "en"):
        for name, build in (("reply_standard", reply), ("acknowledgement_standard", acknowledgement)):
            document = build(language)
            # Fixed core properties, so that rebuilding gives the same text.
            document.core_properties.author = "Estafette"
            document.core_properties.title = name
            path = TARGET / f"{name}.{language}.docx"
            document.save(path)
            print(f"wrote {path.relative_to(TARGET.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

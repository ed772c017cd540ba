"""Text of attachments: PDF, .docx, .odt, e-mail with its odd encodings."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest

from app.search.text_extraction import decode_bytes, decode_header_value, email_text, extract_text

C01_SUBJECT = "=?utf-8?B?RGVtYW5kZSBkZSBkw6lyb2dhdGlvbiDigJMgYXJyww==?=\n =?utf-8?B?qnTDqSBwcsOpZmVjdG9yYWwgbsKwIDIwMjYtMTE0?="


def test_encoded_words_split_inside_character():
    assert decode_header_value(C01_SUBJECT) == "Demande de dérogation – arrêté préfectoral n° 2026-114"


def test_latin1_label_read_as_windows_1252():
    raw = (b'Subject: =?iso-8859-1?Q?redevance?=\r\nContent-Type: text/plain; charset="iso-8859-1"\r\n'
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"Objet : redevance de 150 =80 =96 l=92arr=EAt=E9 du c=9Cur de ville=85\r\n")
    text = email_text(raw)

    assert "Objet : redevance de 150 € – l’arrêté du cœur de ville…" in text
    assert not any("\x80" <= char <= "\x9f" for char in text)


def test_utf8_label_on_latin1_body():
    raw = (b'Subject: Plainte\r\nContent-Type: text/plain; charset="utf-8"\r\n'
           b"Content-Transfer-Encoding: 8bit\r\n\r\n"
           + "Bécassine Lévêque de Châteauroux réclame".encode("latin-1") + b"\r\n")

    assert "Bécassine Lévêque de Châteauroux réclame" in email_text(raw)


def test_latin1_label_on_utf8_body():
    raw = (b'Subject: Plainte\r\nContent-Type: text/plain; charset="iso-8859-1"\r\n'
           b"Content-Transfer-Encoding: 8bit\r\n\r\n"
           + "Noémie Thévenot dénonce un élevage".encode() + b"\r\n")

    assert "Noémie Thévenot dénonce un élevage" in email_text(raw)


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("déjà".encode(), None, "déjà"),
        ("déjà".encode("cp1252"), None, "déjà"),
        ("déjà".encode("cp1252"), "no-such-charset", "déjà"),
        ("cœur".encode("iso-8859-15"), "iso-8859-15", "cœur"),
        ("Ďábel".encode("iso-8859-2"), "iso-8859-2", "Ďábel"),
        ("plain".encode("ascii"), "utf-8", "plain"),
        ("déjà".encode(), "hex", "déjà"),
        ("déjà".encode("cp1252"), "rot13", "déjà"),
        ("déjà".encode(), "ISO_8859-1", "déjà"),
        ("déjà".encode(), '"iso_8859-15"', "déjà"),
    ],
    ids=["utf8-unlabelled", "cp1252-unlabelled", "unknown-label", "latin9", "latin2", "ascii", "hex-label",
         "rot13-label", "latin1-other-spelling", "latin9-quoted"],
)
def test_decode_bytes_labels(data: bytes, charset: str | None, expected: str):
    assert decode_bytes(data, charset) == expected


def test_email_html_and_attachment():
    document = docx.Document()
    document.add_paragraph("Plan de prévention des inondations")
    buffer = io.BytesIO()
    document.save(buffer)
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Transmission"
    message.set_content("Corps en texte")
    message.add_alternative("<p>Bonjour <script>alert(1)</script><b>madame</b></p>", subtype="html")
    message.add_attachment(buffer.getvalue(), maintype="application",
                           subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="plan.docx")
    text = email_text(message.as_bytes())

    assert "Bonjour madame" in text
    assert "alert" not in text
    assert "Plan de prévention des inondations" in text


def test_docx_paragraphs_and_tables():
    document = docx.Document()
    document.add_paragraph("Arrêté portant autorisation")
    table = document.add_table(rows=1, cols=1)
    table.rows[0].cells[0].text = "Parcelle AB 123"
    buffer = io.BytesIO()
    document.save(buffer)
    extraction = extract_text(buffer.getvalue(), "application/octet-stream", "arrete.docx")

    assert "Arrêté portant autorisation" in extraction.text
    assert "Parcelle AB 123" in extraction.text


def test_odt_paragraphs():
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
               '<text:h>Délibération</text:h><text:p>du conseil <text:span>municipal</text:span></text:p>'
               '</office:text></office:body></office:document-content>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", content)
    extraction = extract_text(buffer.getvalue(), "application/vnd.oasis.opendocument.text", "deliberation.odt")

    assert extraction.text == "Délibération\ndu conseil municipal"


def test_pdf_text_layer():
    from datetime import date

    from app.demo.letters import render_letter_pdf

    pdf = render_letter_pdf(
        {"category": "incoming", "subject": "Objet", "letter_date": date(2026, 12, 1), "body_paragraphs": ["Raccordement au réseau"]},
        {"kind": "person", "civility": "M.", "first_name": "Jean", "last_name": "Valjean", "organisation": None,
         "address": "1 rue Haute", "postcode": "75001", "city": "Paris", "email": None, "phone": None},
    )
    extraction = extract_text(pdf, "application/pdf", "lettre.pdf")

    assert "Raccordement au réseau" in extraction.text
    assert not extraction.needs_ocr


def test_image_needs_ocr():
    assert extract_text(b"\x89PNG\r\n\x1a\n", "image/png", "scan.png").needs_ocr


def test_damaged_file_gives_no_text():
    extraction = extract_text(b"%PDF-1.4 broken", "application/pdf", "broken.pdf")
    assert extraction.text == ""

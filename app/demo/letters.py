"""Render a demo mail as an A4 PDF letter, standing in for the scan a register attaches.

reportlab's standard Helvetica fonts use WinAnsiEncoding, which contains the
French characters (é, è, ç, œ, Œ, «, ») as well as €, ’ and –. reportlab 5.1
draws characters outside WinAnsi, such as the narrow no-break space (U+202F)
or non-Latin scripts, as black boxes, so the generated text avoids them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen.canvas import Canvas

from app.demo.generator import format_french_date

FONT = "Helvetica"
BOLD_FONT = "Helvetica-Bold"
FONT_SIZE = 10.5
LINE_HEIGHT = 14
PARAGRAPH_GAP = 8

PAGE_WIDTH, PAGE_HEIGHT = A4
LEFT_MARGIN = 25 * mm
RIGHT_MARGIN = 20 * mm
TOP_MARGIN = 20 * mm
BOTTOM_MARGIN = 20 * mm
TEXT_WIDTH = PAGE_WIDTH - LEFT_MARGIN - RIGHT_MARGIN
# Left edge of the recipient block and of the date line: the address window
# of a French DL envelope starts about 100 mm from the left edge of the sheet.
RIGHT_COLUMN_X = 110 * mm
RECIPIENT_TOP = PAGE_HEIGHT - 50 * mm
SENDER_WIDTH = RIGHT_COLUMN_X - LEFT_MARGIN - 5 * mm
RECIPIENT_WIDTH = PAGE_WIDTH - RIGHT_MARGIN - RIGHT_COLUMN_X

PREFECTURE_CITY = "Paris"
PREFECTURE_SERVICE = "Direction de la citoyenneté et de la légalité"


def _full_name(correspondent: Mapping[str, object]) -> str | None:
    if not correspondent.get("last_name"):
        return None
    parts = (correspondent.get("civility"), correspondent.get("first_name"), correspondent.get("last_name"))
    return " ".join(str(part) for part in parts if part)


def _postal_lines(correspondent: Mapping[str, object]) -> list[str]:
    lines = []
    if correspondent.get("address"):
        lines.append(str(correspondent["address"]))
    locality = " ".join(str(part) for part in (correspondent.get("postcode"), correspondent.get("city")) if part)
    if locality:
        lines.append(locality)
    return lines


def _correspondent_as_sender(correspondent: Mapping[str, object]) -> list[str]:
    lines = []
    if correspondent.get("organisation"):
        lines.append(str(correspondent["organisation"]))
    name = _full_name(correspondent)
    if name:
        lines.append(name)
    lines.extend(_postal_lines(correspondent))
    if correspondent.get("phone"):
        lines.append(f"Tél. : {correspondent['phone']}")
    if correspondent.get("email"):
        lines.append(f"Courriel : {correspondent['email']}")
    return lines


def _correspondent_as_recipient(correspondent: Mapping[str, object]) -> list[str]:
    name = _full_name(correspondent)
    if correspondent.get("organisation"):
        lines = [str(correspondent["organisation"])]
        if name:
            lines.append(f"À l'attention de {name}")
    else:
        lines = [name or ""]
    return lines + _postal_lines(correspondent)


def _salutation(mail: Mapping[str, object], correspondent: Mapping[str, object] | None) -> str | None:
    category = mail.get("category")
    if category == "incoming":
        return "Monsieur le Préfet,"
    if category == "outgoing" and correspondent is not None:
        civility = correspondent.get("civility")
        if civility == "Mme":
            return "Madame,"
        if civility == "M.":
            return "Monsieur,"
        return "Madame, Monsieur,"
    return None


def _letter_layout(
    mail: Mapping[str, object], correspondent: Mapping[str, object] | None, prefecture_name: str
) -> tuple[list[str], list[str], str, list[str]]:
    """Return (sender lines, recipient lines, place of writing, signature lines) for the mail's category."""
    prefecture_lines = [prefecture_name, PREFECTURE_SERVICE]

    if mail.get("category") == "incoming" and correspondent is not None:
        sender = _correspondent_as_sender(correspondent)
        recipient = ["Monsieur le Préfet", prefecture_name, "Service du courrier"]
        place = str(correspondent.get("city") or PREFECTURE_CITY)
        signature = [str(line) for line in (_full_name(correspondent), correspondent.get("organisation")) if line]
        return sender, recipient, place, signature

    if mail.get("category") == "outgoing" and correspondent is not None:
        recipient = _correspondent_as_recipient(correspondent)
        signature = ["Pour le préfet et par délégation,", "Le secrétaire général"]
        return prefecture_lines, recipient, PREFECTURE_CITY, signature

    # Internal mail, or mail without a correspondent.
    recipient = ["Note à l'attention de", "Monsieur le Préfet"]
    signature = ["Le directeur de la citoyenneté et de la légalité"]
    return prefecture_lines, recipient, PREFECTURE_CITY, signature


class _LetterWriter:
    """Write lines down an A4 canvas, starting a new page when the current one is full."""

    def __init__(self, canvas: Canvas, top: float):
        self.canvas = canvas
        self.y = top

    def write_lines(self, lines: Sequence[str], x: float = LEFT_MARGIN, font: str = FONT) -> None:
        for line in lines:
            if self.y < BOTTOM_MARGIN:
                self.canvas.showPage()
                self.y = PAGE_HEIGHT - TOP_MARGIN
            self.canvas.setFont(font, FONT_SIZE)
            self.canvas.drawString(x, self.y, line)
            self.y -= LINE_HEIGHT

    def write_wrapped(self, lines: Sequence[str], width: float, x: float = LEFT_MARGIN, font: str = FONT) -> None:
        """Write each line, wrapped to width (in points)."""
        for line in lines:
            self.write_lines(simpleSplit(line, font, FONT_SIZE, width), x=x, font=font)

    def write_paragraph(self, text: str, font: str = FONT, first_line_prefix: str = "") -> None:
        lines = simpleSplit(first_line_prefix + text, font, FONT_SIZE, TEXT_WIDTH)
        self.write_lines(lines, font=font)
        self.y -= PARAGRAPH_GAP


def render_letter_pdf(
    mail: dict, correspondent: dict | None, prefecture_name: str = "Préfecture de la région Île-de-France"
) -> bytes:
    """Render a mail as a PDF letter and return the PDF bytes.

    ``mail`` is a dict from app.demo.generator (category, subject, letter_date,
    body_paragraphs) and ``correspondent`` its correspondent dict, or None for
    internal mail. Incoming letters go from the correspondent to the prefect,
    outgoing letters from the prefecture to the correspondent. Generated
    letters fit on one page, and longer text continues on further pages.
    """
    buffer = io.BytesIO()
    # invariant=True leaves out the creation date and random document id, so
    # the same mail always gives the same bytes.
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    canvas.setTitle(str(mail["subject"]))
    canvas.setCreator("Estafette demo data")

    sender, recipient, place, signature = _letter_layout(mail, correspondent, prefecture_name)

    sender_block = _LetterWriter(canvas, PAGE_HEIGHT - TOP_MARGIN)
    sender_block.write_wrapped(sender[:1], SENDER_WIDTH, font=BOLD_FONT)
    sender_block.write_wrapped(sender[1:], SENDER_WIDTH)

    recipient_block = _LetterWriter(canvas, RECIPIENT_TOP)
    recipient_block.write_wrapped(recipient, RECIPIENT_WIDTH, x=RIGHT_COLUMN_X)
    recipient_block.y -= LINE_HEIGHT
    letter_date = mail["letter_date"]
    if isinstance(letter_date, date):
        recipient_block.write_lines([f"{place}, le {format_french_date(letter_date)}"], x=RIGHT_COLUMN_X)

    body = _LetterWriter(canvas, min(sender_block.y, recipient_block.y) - 2 * LINE_HEIGHT)
    body.write_paragraph(str(mail["subject"]), font=BOLD_FONT, first_line_prefix="Objet : ")
    body.y -= LINE_HEIGHT

    salutation = _salutation(mail, correspondent)
    if salutation:
        body.write_paragraph(salutation)
    for paragraph in mail.get("body_paragraphs") or ():
        body.write_paragraph(str(paragraph))

    body.y -= LINE_HEIGHT
    body.write_wrapped(signature, RECIPIENT_WIDTH, x=RIGHT_COLUMN_X)

    canvas.showPage()
    canvas.save()
    return buffer.getvalue()

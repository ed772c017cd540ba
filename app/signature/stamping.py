"""Visible signature blocks and PAdES signatures on PDF files.

The visible block (name, title, date and an optional image) is drawn with
reportlab on a one-page overlay and merged onto the last page with pypdf.
The PAdES signature is made with pyHanko from a PKCS#12 file, as an
incremental update, so it must be the last change made to the file: any later
rewrite would break it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

log = logging.getLogger(__name__)

# Size and margins of the block, in PDF points (1/72 inch); blocks of later
# signatories are stacked above the earlier ones.
BLOCK_WIDTH = 230
BLOCK_HEIGHT = 78
MARGIN = 36
IMAGE_WIDTH = 70
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


class StampingFailed(Exception):
    """The PDF could not be read, stamped or signed. The message names the step and the cause."""


@dataclass(frozen=True)
class SignatureBlock:
    """The texts and image of one visible signature block, already in the document's language."""

    heading: str
    name: str
    title: str
    date_text: str
    image: bytes | None = None


@cache
def _font_name() -> str:
    """Return DejaVu Sans when installed, which covers every Latin and Cyrillic name, else Helvetica."""
    if DEJAVU.is_file():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(DEJAVU)))
        return "DejaVuSans"
    return "Helvetica"


def _overlay(width: float, height: float, block: SignatureBlock, index: int) -> bytes:
    buffer = io.BytesIO()
    drawing = canvas.Canvas(buffer, pagesize=(width, height))
    font = _font_name()
    left = max(MARGIN, width - MARGIN - BLOCK_WIDTH)
    bottom = MARGIN + index * (BLOCK_HEIGHT + 8)
    drawing.setStrokeColorRGB(0.2, 0.3, 0.5)
    drawing.rect(left, bottom, BLOCK_WIDTH, BLOCK_HEIGHT, stroke=1, fill=0)

    text_left = left + 6
    if block.image:
        try:
            drawing.drawImage(
                ImageReader(io.BytesIO(block.image)), left + 4, bottom + 4, width=IMAGE_WIDTH,
                height=BLOCK_HEIGHT - 8, preserveAspectRatio=True, anchor="c", mask="auto",
            )
            text_left = left + IMAGE_WIDTH + 10
        except (OSError, ValueError) as error:
            # The block is still signed with the name, title and date when the image cannot be read.
            log.warning("signature image not drawn: %s", error)

    lines = [(block.heading, 7), (block.name, 9), (block.title, 7), (block.date_text, 7)]
    y = bottom + BLOCK_HEIGHT - 14
    for text, size in lines:
        if not text:
            continue
        drawing.setFont(font, size)
        drawing.drawString(text_left, y, text[:60])
        y -= size + 8
    drawing.showPage()
    drawing.save()
    return buffer.getvalue()


def stamp_block(pdf: bytes, block: SignatureBlock, index: int = 0) -> bytes:
    """Return ``pdf`` with ``block`` drawn at the bottom right of its last page; ``index`` stacks blocks."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        writer = PdfWriter(clone_from=reader)
        page = writer.pages[-1]
        box = page.mediabox
        overlay = PdfReader(io.BytesIO(_overlay(float(box.width), float(box.height), block, index))).pages[0]
        page.merge_translated_page(overlay, float(box.left), float(box.bottom))
        output = io.BytesIO()
        writer.write(output)
    except Exception as error:  # pypdf raises many kinds of error on damaged files
        raise StampingFailed(f"the PDF could not be stamped: {error}") from error
    return output.getvalue()


def pades_sign(pdf: bytes, pkcs12_path: str, password: str, signer_name: str, reason: str, location: str) -> bytes:
    """Return ``pdf`` signed (PAdES baseline B) with the key and certificate of the PKCS#12 file."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter

    try:
        signer = signers.SimpleSigner.load_pkcs12_data(
            Path(pkcs12_path).read_bytes(), [], passphrase=password.encode("utf-8") if password else None
        )
    except (OSError, ValueError) as error:
        raise StampingFailed(f"the PKCS#12 certificate {pkcs12_path} could not be loaded: {error}") from error
    metadata = signers.PdfSignatureMetadata(
        field_name="EstafetteSignature", subfilter=SigSeedSubFilter.PADES, name=signer_name,
        reason=reason, location=location or None,
    )
    output = io.BytesIO()
    try:
        # Each signature needs its own field name: earlier signatures of the file keep theirs.
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        existing = _signature_field_count(pdf)
        if existing:
            metadata = signers.PdfSignatureMetadata(
                field_name=f"EstafetteSignature{existing + 1}", subfilter=SigSeedSubFilter.PADES,
                name=signer_name, reason=reason, location=location or None,
            )
        _call_outside_event_loop(lambda: signers.sign_pdf(writer, metadata, signer=signer, output=output))
    except Exception as error:  # pyHanko raises many kinds of error on damaged files
        raise StampingFailed(f"the PDF could not be signed: {error}") from error
    return output.getvalue()


def _call_outside_event_loop(function: Callable[[], object]) -> None:
    """Call ``function`` in a worker thread when this thread runs an asyncio event loop.

    pyHanko's synchronous ``sign_pdf`` calls ``asyncio.run()``, which raises in a
    thread whose loop is running (Playwright's synchronous API leaves one in the
    test process, and an async web worker would too).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        function()
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(function).result()


def _signature_field_count(pdf: bytes) -> int:
    from pyhanko.pdf_utils.reader import PdfFileReader

    return len(PdfFileReader(io.BytesIO(pdf)).embedded_signatures)

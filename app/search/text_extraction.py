"""Text of attachments for the search index: PDF text layer, .docx, .odt, e-mail, OCR.

Extraction runs in the indexer, after the registration's commit: in the
web worker when it indexes a form's changes before its response, so a .docx or
.odt is unpacked within limits first (app/core/archives.py). Scanned
PDFs and images need OCR (Tesseract), which is slow, so :func:`extract_text`
only reports them (``needs_ocr``) and :func:`ocr_text` is called later by the
indexer's OCR pass.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import io
import logging
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from email.header import decode_header
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

from app.core.archives import repack_archive

log = logging.getLogger(__name__)

# Characters of text kept per file: enough for any letter, bounded for 300-page annexes.
MAX_TEXT_CHARACTERS = 200_000
# A PDF page with fewer letters than this in its text layer is taken as scanned.
MIN_LETTERS_PER_PAGE = 20
OCR_TIMEOUT_SECONDS = 300
OCR_RESOLUTION_DPI = 200
MAX_EMAIL_DEPTH = 3

_C1_CONTROLS = re.compile("[\u0080-\u009f\u0000-\u0008\u000b\u000c\u000e-\u001f]")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff")


@dataclass
class Extraction:
    """Text found in a file and how; ``needs_ocr`` when its text is in images only."""

    text: str
    method: str
    needs_ocr: bool = False


def clean(text: str) -> str:
    """Drop control characters (C0 but tab and newlines, and C1) and bound the length."""
    return _C1_CONTROLS.sub(" ", text)[:MAX_TEXT_CHARACTERS].strip()


def extract_text(data: bytes, content_type: str, filename: str = "") -> Extraction:
    """Return the text of one file, by its content type (or its extension when that is generic)."""
    kind = _kind(content_type, filename)
    try:
        if kind == "pdf":
            return _pdf(data)
        if kind == "docx":
            return Extraction(clean(_docx(data)), "docx")
        if kind == "odt":
            return Extraction(clean(_odt(data)), "odt")
        if kind == "email":
            return Extraction(clean(email_text(data)), "email")
        if kind == "text":
            return Extraction(clean(decode_bytes(data, None)), "plain")
        if kind == "image":
            return Extraction("", "ocr", needs_ocr=True)
    except Exception as error:  # noqa: BLE001 - a damaged file must not stop indexing of its mail.
        log.warning("text extraction of %s (%s) failed: %s", filename or "file", content_type, error)
        return Extraction("", "failed")
    return Extraction("", "none")


def _kind(content_type: str, filename: str) -> str:
    content_type = (content_type or "").split(";")[0].strip().lower()
    suffix = Path(filename or "").suffix.lower()
    if content_type == "application/pdf" or suffix == ".pdf":
        return "pdf"
    if content_type.endswith("wordprocessingml.document") or suffix == ".docx":
        return "docx"
    if content_type == "application/vnd.oasis.opendocument.text" or suffix == ".odt":
        return "odt"
    if content_type == "message/rfc822" or suffix == ".eml":
        return "email"
    if content_type in IMAGE_TYPES or suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        return "image"
    if content_type.startswith("text/") or suffix == ".txt":
        return "text"
    return "other"


# --- PDF, .docx, .odt -----------------------------------------------------------


def _pdf(data: bytes) -> Extraction:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    pages = [page.extract_text() or "" for page in reader.pages]
    letters = sum(sum(char.isalpha() for char in page) for page in pages)
    text = clean("\n".join(pages))
    scanned = bool(pages) and letters < MIN_LETTERS_PER_PAGE * len(pages)
    return Extraction(text, "text_layer", needs_ocr=scanned)


def _docx(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(repack_archive(data)))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return "\n".join(part for part in parts if part)


_ODT_TEXT_TAGS = {"p", "h", "span", "list-item"}


def _odt(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(repack_archive(data))) as archive:
        root = ElementTree.fromstring(archive.read("content.xml"))
    paragraphs = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] in ("p", "h"):
            paragraphs.append("".join(element.itertext()))
    return "\n".join(paragraph for paragraph in paragraphs if paragraph)


# --- E-mail ------------------------------------------------------------------------


def charset_codec(charset: str | None) -> str:
    """Return the codec to decode a declared charset with: ISO-8859-1 and ASCII labels mean Windows-1252.

    Mail clients label Windows-1252 text (€, ’, œ, …) as ISO-8859-1, whose
    bytes 0x80-0x9F would otherwise become invisible C1 controls; browsers
    (WHATWG Encoding Standard) read the label the same way.
    """
    name = (charset or "").strip().strip('"').strip().lower()
    try:
        canonical = codecs.lookup(name).name if name else ""
    except LookupError:
        return name
    if canonical in ("", "ascii", "latin-1", "iso8859-1"):
        return "cp1252"
    return canonical


# Western single-byte codecs, by Python's name: accented UTF-8 text labelled with one of them is read as UTF-8.
_SINGLE_BYTE_CODECS = frozenset({"cp1252", "iso8859-15"})


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode text bytes in their declared charset, or in the one that fits when the label is wrong.

    Without a charset, or with an unknown one, valid UTF-8 is read as UTF-8
    and anything else as Windows-1252. Mail programs also mislabel. Text
    declared UTF-8 that is not valid UTF-8 is read as Windows-1252. Text
    declared in a Western single-byte charset that is valid UTF-8 with
    accented letters is read as UTF-8: read as labelled, "é" became "Ã©".
    """
    codec = charset_codec(charset) if charset is not None else None
    if codec is not None:
        try:
            codecs.lookup(codec)
        except LookupError:
            codec = None
    utf8 = _strict_utf8(data)
    if codec is None:
        return utf8 if utf8 is not None else data.decode("cp1252", errors="replace")
    if codecs.lookup(codec).name == "utf-8":
        return utf8 if utf8 is not None else data.decode("cp1252", errors="replace")
    if codec in _SINGLE_BYTE_CODECS and utf8 is not None and not data.isascii():
        return utf8
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return utf8 if utf8 is not None else data.decode(codec, errors="replace")
    except LookupError:
        # A codec of Python's that is not a text encoding, such as hex or rot13.
        return utf8 if utf8 is not None else data.decode("cp1252", errors="replace")


def _strict_utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_header_value(raw: str) -> str:
    """Decode an RFC 2047 header, joining adjacent encoded words of one charset as bytes first.

    Some mailers cut a UTF-8 character between two encoded words; decoding
    each word alone would give replacement characters.
    """
    chunks: list[tuple[bytes, str | None]] = []
    for value, charset in decode_header(raw):
        data = value if isinstance(value, bytes) else value.encode("utf-8", errors="replace")
        if chunks and chunks[-1][1] == charset:
            chunks[-1] = (chunks[-1][0] + data, charset)
        else:
            chunks.append((data, charset))
    text = "".join(decode_bytes(data, charset) if charset else decode_bytes(data, None) for data, charset in chunks)
    return re.sub(r"\s+", " ", text).strip()


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def email_text(data: bytes, depth: int = 0) -> str:
    """Return the subject, sender, text bodies and attached documents' text of an .eml file."""
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    parts = []
    for header in ("Subject", "From", "To"):
        raw = message.get(header)
        if raw:
            parts.append(decode_header_value(str(raw)))
    parts.extend(_message_texts(message, depth))
    return "\n".join(part for part in parts if part)


def _message_texts(message: Message, depth: int) -> list[str]:
    texts: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        payload = part.get_payload(decode=True)
        if payload is None:
            continue
        filename = part.get_filename()
        filename = decode_header_value(filename) if filename else ""
        if content_type == "text/plain" and not filename:
            texts.append(decode_bytes(payload, part.get_content_charset() or "us-ascii"))
        elif content_type == "text/html" and not filename:
            texts.append(html_text(decode_bytes(payload, part.get_content_charset() or "us-ascii")))
        elif content_type == "message/rfc822" or filename.lower().endswith(".eml"):
            if depth < MAX_EMAIL_DEPTH:
                texts.append(email_text(payload, depth + 1))
        elif filename:
            extraction = extract_text(payload, content_type, filename)
            texts.append(" ".join(part for part in (filename, extraction.text) if part))
    return texts


# --- OCR ------------------------------------------------------------------------------


def ocr_available() -> bool:
    return shutil.which("tesseract") is not None and shutil.which("pdftoppm") is not None


def ocr_text(data: bytes, content_type: str, filename: str, language: str = "fra") -> str:
    """Return the text Tesseract reads in a scanned PDF or an image; raise RuntimeError on failure."""
    with tempfile.TemporaryDirectory(prefix="estafette-ocr-") as directory:
        work = Path(directory)
        if _kind(content_type, filename) == "pdf":
            (work / "scan.pdf").write_bytes(data)
            _run(["pdftoppm", "-r", str(OCR_RESOLUTION_DPI), "-png", str(work / "scan.pdf"), str(work / "page")])
            images = sorted(work.glob("page*.png"))
        else:
            image = work / ("scan" + (Path(filename).suffix.lower() or ".png"))
            image.write_bytes(data)
            images = [image]
        texts = [_run(["tesseract", str(image), "-", "-l", language]) for image in images]
    return clean("\n".join(texts))


def _run(command: list[str]) -> str:
    completed = subprocess.run(command, capture_output=True, timeout=OCR_TIMEOUT_SECONDS, check=False)
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", errors="replace").strip()[-500:]
        raise RuntimeError(f"{command[0]} failed with exit code {completed.returncode}: {message}")
    return completed.stdout.decode("utf-8", errors="replace")

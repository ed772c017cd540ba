"""File names and content types of uploaded attachments.

Names come from browsers and MIME headers, so they are untrusted. Files are
stored by content hash (see ``app.attachments.storage``), so a name is only
shown to users and sent back in ``Content-Disposition``, never used as a path.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import quote

__all__ = [
    "ALLOWED_TYPES",
    "DEFAULT_NAME",
    "DOCX_TYPE",
    "EML_TYPE",
    "HEAD_SIZE",
    "MAX_NAME_LENGTH",
    "ODT_TYPE",
    "content_disposition",
    "guess_content_type",
    "inspect_filename",
    "safe_display_name",
    "sniff_content_type",
]

DEFAULT_NAME = "piece_jointe"
MAX_NAME_LENGTH = 200

# An extension is a dot followed by 1 to 10 letters or digits. Longer or
# spaced suffixes ("Note v2. Final version") are part of the stem.
_EXTENSION = re.compile(r"\.[^\W_]{1,10}")

# Bidirectional controls can make "photo\u202Efdp.exe" display as "photoexe.pdf".
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- Display names -------------------------------------------------------


def _is_unwanted_char(char: str) -> bool:
    """Tell whether a character must not appear in a displayed name.

    Control characters (Cc, including NUL, tab and line breaks), surrogates
    left by a lossy decode (Cs), line and paragraph separators (Zl, Zp) and
    bidirectional controls are unwanted.
    """
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI_CONTROLS


def _split_extension(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot >= 0 and _EXTENSION.fullmatch(name[dot:]):
        return name[:dot], name[dot:]
    return name, ""


def _trim(text: str) -> str:
    """Remove white space and dots at both ends."""
    return re.sub(r"^[\s.]+|[\s.]+$", "", text)


def inspect_filename(raw: str | None) -> tuple[str, bool]:
    """Clean an untrusted file name and report whether it looked like an attack.

    Returns ``(name, suspicious)``. ``name`` is what :func:`safe_display_name`
    returns. ``suspicious`` is true when the raw name contained a ``/`` or
    ``\\`` separator, a ``..`` path component or an unwanted character (NUL,
    other control characters, bidirectional controls), or when nothing usable
    remained (empty, ``.``, ``..``). The caller should write a security log
    line for a suspicious name.

    Percent-encoding is not decoded here: the caller decodes RFC 2231 or
    RFC 5987 parameters first.
    """
    if raw is None or raw == "":
        return DEFAULT_NAME, True

    text = unicodedata.normalize("NFC", raw)
    has_unwanted = any(_is_unwanted_char(char) for char in text)
    text = "".join(char for char in text if not _is_unwanted_char(char))

    components = re.split(r"[/\\]", text)
    has_separator = len(components) > 1
    has_parent_reference = any(component.strip() == ".." for component in components)

    stem, extension = _split_extension(components[-1].strip())
    stem = _trim(stem)
    if not stem:
        return DEFAULT_NAME + extension, True

    if len(stem) + len(extension) > MAX_NAME_LENGTH:
        stem = _trim(stem[: MAX_NAME_LENGTH - len(extension)])

    suspicious = has_separator or has_parent_reference or has_unwanted
    return stem + extension, suspicious


def safe_display_name(raw: str | None) -> str:
    """Return the name to show users for an untrusted upload or MIME file name.

    Keeps accents and non-Latin letters (NFC-normalised), drops any directory
    part written with ``/`` or ``\\``, removes control characters, trims
    spaces and dots at both ends and cuts the name to 200 characters while
    keeping the extension. An empty result becomes ``piece_jointe`` plus the
    extension if there was one. See :func:`inspect_filename` for the details.
    """
    name, _suspicious = inspect_filename(raw)
    return name


# --- Content-Disposition -------------------------------------------------

# Replacements applied before accents are stripped for the ASCII fallback.
_ASCII_REPLACEMENTS = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u2013": "-",
        "\u2014": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u00a0": " ",
        "\u202f": " ",
    }
)

# RFC 5987 attr-char minus ALPHA, DIGIT and "-._~", which quote() never encodes.
_ATTR_CHAR_PUNCTUATION = "!#$&+^`|"


def _ascii_fallback(name: str) -> str:
    """Transliterate a display name to printable ASCII for ``filename=``.

    Accents are stripped, letters and digits with no ASCII form become
    ``_``, other non-ASCII characters (``°``, ``«``) are dropped, and ``"``
    and ``\\`` are removed so the value fits in a quoted string.
    """
    decomposed = unicodedata.normalize("NFKD", name.translate(_ASCII_REPLACEMENTS))
    characters: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) or char in '"\\':
            continue
        if " " <= char <= "~":
            characters.append(char)
        elif unicodedata.category(char)[0] in ("L", "N"):
            characters.append("_")
    # Dropped characters can leave two spaces side by side ("a « b »").
    fallback = _trim(re.sub(r" {2,}", " ", "".join(characters)))
    return fallback or DEFAULT_NAME


def content_disposition(name: str, disposition: Literal["attachment", "inline"]) -> str:
    """Build a ``Content-Disposition`` header value as RFC 6266 describes.

    The value carries an ASCII ``filename="..."`` for old clients and
    ``filename*=UTF-8''...`` percent-encoded as RFC 5987 requires, so it is
    pure ASCII and safe for WSGI servers, which need latin-1 headers. The name
    goes through :func:`safe_display_name` first, so line breaks cannot
    inject a header.
    """
    if disposition not in ("attachment", "inline"):
        raise ValueError(f"invalid disposition {disposition!r}: expected 'attachment' or 'inline'")

    display_name = safe_display_name(name)
    fallback = _ascii_fallback(display_name)
    encoded = quote(display_name, safe=_ATTR_CHAR_PUNCTUATION, encoding="utf-8")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# --- Content types -------------------------------------------------------

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT_TYPE = "application/vnd.oasis.opendocument.text"
EML_TYPE = "message/rfc822"

# Accepted upload types and their usual extensions.
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/tiff": (".tif", ".tiff"),
    EML_TYPE: (".eml",),
    DOCX_TYPE: (".docx",),
    ODT_TYPE: (".odt",),
}

# Number of leading bytes :func:`sniff_content_type` reads for magic numbers.
HEAD_SIZE = 8192

_MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
_ZIP_MAGIC = b"PK\x03\x04"

# Header fields of which at least one must be in the header block of a saved e-mail.
_EMAIL_FIELDS = frozenset(
    {
        "from",
        "received",
        "return-path",
        "mime-version",
        "date",
        "subject",
        "message-id",
        "to",
        "delivered-to",
    }
)
_HEADER_LINE = re.compile(r"(?P<field>[!-9;-~]+)[ \t]*:.*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Members larger than this are not read during detection (zip bomb guard).
_MAX_MEMBER_READ = 64 * 1024


def _extension(name: str) -> str:
    return Path(name.replace("\\", "/")).suffix.lower()


def _looks_like_email(head: bytes) -> bool:
    """Tell whether ``head`` starts with an RFC 5322 header block.

    Every line up to the first empty line, or to the end of ``head``, must be
    a header field or a folded continuation, and at least one common e-mail
    field must occur. Any field may come first: mail programs save messages
    opening with ``Content-Type``, ``DKIM-Signature``, ``ARC-Seal`` or
    ``Authentication-Results``. The separator line of an mbox file
    (``From sender date``) may open the file.
    """
    if b"\x00" in head:
        return False
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n")
    # Split on CR and LF only: str.splitlines() also splits on bytes such as 0x85, which raw
    # 8-bit headers contain (the Cyrillic "х" in Windows-1251, "…" in Windows-1252).
    lines = _LINE_BREAK.split(head.decode("latin-1"))
    if lines and lines[-1] == "":
        lines = lines[:-1]
    elif head:
        lines = lines[:-1]  # The last line may be cut in the middle.
    if lines and lines[0].startswith("From "):
        lines = lines[1:]

    fields: list[str] = []
    for line in lines:
        if line == "":
            break
        if line[0] in " \t" and fields:
            continue
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return False
        fields.append(match["field"].lower())

    if not fields:
        return False
    return any(field in _EMAIL_FIELDS for field in fields)


def _office_type(archive: zipfile.ZipFile) -> str | None:
    """Return the type of a DOCX or ODT archive, or None for any other zip.

    A DOCX must contain ``[Content_Types].xml`` and a ``word/`` member and no
    VBA project, because macro-enabled documents are not accepted. An ODT
    must contain a ``mimetype`` member whose content is the ODT media type.
    """
    members = {info.filename: info for info in archive.infolist()}

    if "[Content_Types].xml" in members and any(name.startswith("word/") for name in members):
        if "word/vbaProject.bin" in members:
            return None
        return DOCX_TYPE

    mimetype = members.get("mimetype")
    if mimetype is None or mimetype.file_size > _MAX_MEMBER_READ:
        return None
    if archive.read(mimetype).strip() == ODT_TYPE.encode("ascii"):
        return ODT_TYPE
    return None


def _zip_content_type(source: Path | BinaryIO) -> str | None:
    try:
        with zipfile.ZipFile(source) as archive:
            return _office_type(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError):
        return None
    except (NotImplementedError, RuntimeError):
        # Unsupported compression method or an encrypted member.
        return None


def guess_content_type(name: str, head: bytes) -> str | None:
    """Detect an allowed content type from the first bytes of a file.

    Detection is by content: magic numbers for PDF, PNG, JPEG and TIFF, the
    zip members for DOCX and ODT, and header lines for e-mails. The name's
    extension only decides whether text with e-mail headers is accepted as
    ``message/rfc822``, which needs ``.eml`` or no extension. Returns None for
    any other content, for example an executable renamed ``.pdf``.

    For DOCX and ODT, ``head`` must be the whole file, because the zip index
    sits at its end. Use :func:`sniff_content_type` for a file on disk.
    """
    for magic, content_type in _MAGIC_NUMBERS:
        if head.startswith(magic):
            return content_type

    if head.startswith(_ZIP_MAGIC):
        return _zip_content_type(io.BytesIO(head))

    if _extension(name) in ("", ".eml") and _looks_like_email(head[:HEAD_SIZE]):
        return EML_TYPE
    return None


def sniff_content_type(path: Path, name: str) -> str | None:
    """Detect the allowed content type of the file at ``path``.

    ``name`` is the uploaded file name. Same rules as :func:`guess_content_type`,
    but zip archives are read from ``path`` so the whole file need not be in
    memory. Raises OSError when ``path`` cannot be read.
    """
    with path.open("rb") as file:
        head = file.read(HEAD_SIZE)
    if head.startswith(_ZIP_MAGIC):
        return _zip_content_type(path)
    return guess_content_type(name, head)

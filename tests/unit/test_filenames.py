import io
import zipfile
from pathlib import Path

import pytest

from app.attachments.filenames import (
    ALLOWED_TYPES,
    DOCX_TYPE,
    EML_TYPE,
    ODT_TYPE,
    content_disposition,
    guess_content_type,
    inspect_filename,
    safe_display_name,
    sniff_content_type,
)

PREFECTURE_NAME = "Arrêté n°2026-114 – préfet d’Île-de-France.pdf"

# --- safe_display_name ---------------------------------------------------


@pytest.mark.parametrize("name", [PREFECTURE_NAME, "œuvre.docx", "Рапорт.pdf"])
def test_display_name_keeps_unicode(name: str) -> None:
    assert safe_display_name(name) == name


@pytest.mark.parametrize("name", [PREFECTURE_NAME, "œuvre.docx", "Рапорт.pdf"])
def test_display_name_unicode_not_suspicious(name: str) -> None:
    assert inspect_filename(name)[1] is False


def test_display_name_nfc_normalised() -> None:
    decomposed = "Arre\u0302te\u0301.pdf"
    assert safe_display_name(decomposed) == "Arr\u00eat\u00e9.pdf"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../../app/config/settings.yaml", "settings.yaml"),
        # "..%2F..%2Fstatic%2Findex.html" once the caller decoded it.
        ("../../static/index.html", "index.html"),
        ("C:\\Windows\\win.ini", "win.ini"),
        ("rapport\x00.pdf", "rapport.pdf"),
        (".", "piece_jointe"),
        ("..", "piece_jointe"),
        ("", "piece_jointe"),
        (None, "piece_jointe"),
        ("dossier/", "piece_jointe"),
        ("../.pdf", "piece_jointe.pdf"),
        ("rapport\r\nX-Injected: 1.pdf", "rapportX-Injected: 1.pdf"),
        ("photo\u202efdp.exe", "photofdp.exe"),
    ],
)
def test_display_name_hostile_input(raw: str | None, expected: str) -> None:
    name, suspicious = inspect_filename(raw)
    assert name == expected
    assert suspicious is True


def test_display_name_percent_not_decoded() -> None:
    # Only the leading dots go, as for any name.
    assert safe_display_name("..%2F..%2Fstatic%2Findex.html") == "%2F..%2Fstatic%2Findex.html"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  rapport.pdf  ", "rapport.pdf"),
        ("rapport.", "rapport"),
        ("...rapport.pdf...", "rapport.pdf"),
        ("Note v2. Version finale", "Note v2. Version finale"),
    ],
)
def test_display_name_trims_ends(raw: str, expected: str) -> None:
    name, suspicious = inspect_filename(raw)
    assert name == expected
    assert suspicious is False


def test_display_name_length_keeps_extension() -> None:
    name = safe_display_name("a" * 300 + ".pdf")
    assert len(name) == 200
    assert name.endswith("a.pdf")


def test_display_name_length_trims_cut_end() -> None:
    name = safe_display_name("a" * 195 + " . b" + "c" * 50 + ".pdf")
    assert name == "a" * 195 + ".pdf"


def test_display_name_stable_when_reapplied() -> None:
    once = safe_display_name("../" + "é" * 250 + ".docx")
    assert safe_display_name(once) == once


# --- content_disposition -------------------------------------------------


def test_content_disposition_prefecture_name() -> None:
    value = content_disposition(PREFECTURE_NAME, "attachment")
    assert value == (
        "attachment; "
        "filename=\"Arrete n2026-114 - prefet d'Ile-de-France.pdf\"; "
        "filename*=UTF-8''Arr%C3%AAt%C3%A9%20n%C2%B02026-114%20%E2%80%93%20pr%C3%A9fet%20d%E2%80%99%C3%8Ele-de-France.pdf"
    )


def test_content_disposition_ligature_fallback() -> None:
    value = content_disposition("œuvre.docx", "inline")
    assert value == "inline; filename=\"oeuvre.docx\"; filename*=UTF-8''%C5%93uvre.docx"


def test_content_disposition_cyrillic_fallback() -> None:
    value = content_disposition("Рапорт.pdf", "attachment")
    assert value == "attachment; filename=\"______.pdf\"; filename*=UTF-8''%D0%A0%D0%B0%D0%BF%D0%BE%D1%80%D1%82.pdf"


def test_content_disposition_quotes_removed() -> None:
    value = content_disposition('a"b;d.pdf', "attachment")
    assert 'filename="ab;d.pdf"' in value


def test_content_disposition_attr_chars_unencoded() -> None:
    value = content_disposition("a!#$&+-.^_`|~b.pdf", "attachment")
    assert value.endswith("filename*=UTF-8''a!#$&+-.^_`|~b.pdf")


def test_content_disposition_encodes_separators() -> None:
    value = content_disposition("a;b,c=d'e(f).pdf", "attachment")
    assert value.endswith("filename*=UTF-8''a%3Bb%2Cc%3Dd%27e%28f%29.pdf")


@pytest.mark.parametrize("name", [PREFECTURE_NAME, "Рапорт.pdf", "œuvre.docx", "rapport\r\n.pdf", "报告.pdf"])
def test_content_disposition_is_ascii(name: str) -> None:
    value = content_disposition(name, "attachment")
    assert value.isascii()
    assert "\r" not in value
    assert "\n" not in value


def test_content_disposition_rejects_other_disposition() -> None:
    with pytest.raises(ValueError, match="invalid disposition"):
        content_disposition("a.pdf", "form-data")  # type: ignore[arg-type]


# --- Content type detection ----------------------------------------------

PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
TIFF_LITTLE_ENDIAN = b"II*\x00\x08\x00\x00\x00"
TIFF_BIG_ENDIAN = b"MM\x00*\x00\x00\x00\x08"
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
EMAIL_BYTES = (
    b"Return-Path: <mairie@example.org>\r\n"
    b"Received: from mx.example.org by mail.example.gouv.fr;\r\n"
    b"\tMon, 2 Mar 2026 10:00:00 +0100\r\n"
    b"From: Mairie <mairie@example.org>\r\n"
    b"Subject: Demande de subvention\r\n"
    b"MIME-Version: 1.0\r\n"
    b"\r\n"
    b"Bonjour,\r\n"
)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX_BYTES = _zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
ODT_BYTES = _zip_bytes({"mimetype": ODT_TYPE.encode(), "content.xml": b"<office:document-content/>"})


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("arrete.pdf", PDF_BYTES, "application/pdf"),
        ("scan.png", PNG_BYTES, "image/png"),
        ("photo.jpg", JPEG_BYTES, "image/jpeg"),
        ("scan.tif", TIFF_LITTLE_ENDIAN, "image/tiff"),
        ("scan.tiff", TIFF_BIG_ENDIAN, "image/tiff"),
        ("message.eml", EMAIL_BYTES, EML_TYPE),
        ("message", EMAIL_BYTES, EML_TYPE),
        ("python.eml", b"Content-Type: text/plain; charset=utf-8\nMIME-Version: 1.0\nFrom: a@example.org\n\nBonjour", EML_TYPE),
        ("signed.eml", b"DKIM-Signature: v=1; a=rsa-sha256;\n\tb=abc\nFrom: a@example.org\nSubject: Avis\n\nBody", EML_TYPE),
        ("mbox.eml", b"From a@example.org Fri Dec  4 10:00:00 2026\nFrom: a@example.org\nSubject: Avis\n\nBody", EML_TYPE),
        ("bom.eml", b"\xef\xbb\xbfFrom: a@example.org\r\nSubject: Avis\r\n\r\nBody", EML_TYPE),
        ("blank-first.eml", b"\r\nFrom: a@example.org\r\nSubject:Avis\r\n\r\nBody", EML_TYPE),
        ("raw-8bit.eml", b"From: a@example.org\nSubject: \xef\xee\xe4\xef\x85\xf1\xfc\nX-Note: fin\n\nBody", EML_TYPE),
        ("courrier.docx", DOCX_BYTES, DOCX_TYPE),
        ("courrier.odt", ODT_BYTES, ODT_TYPE),
    ],
)
def test_guess_content_type_allowed(name: str, data: bytes, expected: str) -> None:
    assert guess_content_type(name, data) == expected


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("arrete.pdf", EXE_BYTES),
        ("arrete.pdf", b""),
        ("notes.txt", EMAIL_BYTES),
        ("page.eml", b"<html><body>From: x</body></html>\n"),
        ("message.eml", b"Bonjour,\nFrom: x\n"),
        ("message.eml", b"X-Mailer: test\nX-Other: 1\n\nbody"),
        ("archive.zip", _zip_bytes({"readme.txt": b"hello"})),
        ("macro.docx", _zip_bytes({"[Content_Types].xml": b"<Types/>", "word/vbaProject.bin": b"\x00"})),
        ("calc.odt", _zip_bytes({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet"})),
        ("courrier.docx", DOCX_BYTES[:100]),
    ],
    ids=["exe-renamed-pdf", "empty", "txt-with-headers", "html", "text", "only-x-fields", "plain-zip", "macro", "ods", "truncated-zip"],
)
def test_guess_content_type_rejected(name: str, data: bytes) -> None:
    assert guess_content_type(name, data) is None


def test_guess_content_type_results_allowed() -> None:
    detected = {guess_content_type("a.pdf", PDF_BYTES), guess_content_type("a.docx", DOCX_BYTES)}
    assert detected <= ALLOWED_TYPES.keys()


def test_sniff_content_type_docx_file(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(DOCX_BYTES)
    assert sniff_content_type(path, "courrier.docx") == DOCX_TYPE


def test_sniff_content_type_odt_file(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(ODT_BYTES)
    assert sniff_content_type(path, "courrier.odt") == ODT_TYPE


def test_sniff_content_type_large_docx(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    filler = bytes(range(256)) * 400
    path.write_bytes(
        _zip_bytes({"[Content_Types].xml": b"<Types/>", "word/media/image1.bin": filler, "word/document.xml": b"<w/>"})
    )
    assert sniff_content_type(path, "courrier.docx") == DOCX_TYPE


def test_sniff_content_type_pdf_file(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(PDF_BYTES)
    assert sniff_content_type(path, "arrete.pdf") == "application/pdf"


def test_sniff_content_type_exe_file(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(EXE_BYTES)
    assert sniff_content_type(path, "arrete.pdf") is None

"""Unpacking .docx and .odt archives within limits before their members are read."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
import zlib

import docx
import pytest

from app.core import archives
from app.core.archives import MAX_XML_MEMBER_BYTES, ArchiveTooLarge, repack_archive
from app.search.text_extraction import extract_text

ODT_TYPE = "application/vnd.oasis.opendocument.text"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CHUNK = b"A" * (1024 * 1024)


def zip_bomb(member: str, megabytes: int, compression: int = zipfile.ZIP_DEFLATED, start: bytes = b"") -> bytes:
    """Return a small archive whose ``member`` unpacks to ``start`` then ``megabytes`` of one repeated letter."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr("mimetype", ODT_TYPE, compress_type=zipfile.ZIP_STORED)
        with archive.open(member, "w") as stream:
            stream.write(start)
            for _ in range(megabytes):
                stream.write(CHUNK)
    return buffer.getvalue()


def lying_archive(declared: int, megabytes: int) -> bytes:
    """Return an archive of one member that declares ``declared`` bytes and a matching CRC, but inflates to ``megabytes``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/document.bin", "w") as stream:
            for _ in range(megabytes):
                stream.write(CHUNK)
    data = bytearray(buffer.getvalue())
    crc = zlib.crc32(b"A" * declared)
    # The uncompressed size and the CRC, in the local header and in the central directory.
    struct.pack_into("<I", data, 14, crc)
    struct.pack_into("<I", data, 22, declared)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 16, crc)
    struct.pack_into("<I", data, central + 24, declared)
    return bytes(data)


def test_xml_member_over_limit_refused():
    data = zip_bomb("content.xml", MAX_XML_MEMBER_BYTES // (1024 * 1024) + 1, start=b"<?xml")

    assert len(data) < 200 * 1024
    with pytest.raises(ArchiveTooLarge, match="content.xml"):
        repack_archive(data)


def test_xml_member_renamed_still_limited():
    # XML is recognised by its content, so a part renamed document.bin keeps the XML limit.
    with pytest.raises(ArchiveTooLarge, match="document.bin"):
        repack_archive(zip_bomb("word/document.bin", MAX_XML_MEMBER_BYTES // (1024 * 1024) + 1, start=b"<w:document>"))


def test_members_over_total_refused(monkeypatch):
    monkeypatch.setattr(archives, "MAX_UNPACKED_BYTES", 3 * 1024 * 1024)

    with pytest.raises(ArchiveTooLarge, match="members unpack"):
        repack_archive(zip_bomb("Pictures/scan.png", 4))


def test_bzip2_member_refused():
    with pytest.raises(ArchiveTooLarge, match="compression method"):
        repack_archive(zip_bomb("content.xml", 1, compression=zipfile.ZIP_BZIP2))


def test_declared_size_lie_read_in_chunks():
    data = lying_archive(declared=1000, megabytes=200)

    tracemalloc.start()
    try:
        rebuilt = repack_archive(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # ZipFile.read() on the original inflates all 200 MB before it cuts them to 1,000 bytes.
    assert peak < 10 * 1024 * 1024
    with zipfile.ZipFile(io.BytesIO(rebuilt)) as archive:
        assert archive.read("word/document.bin") == b"A" * 1000


def test_repack_keeps_a_document_readable():
    source = docx.Document()
    source.add_paragraph("Arrêté préfectoral du 4 décembre 2026")
    buffer = io.BytesIO()
    source.save(buffer)

    rebuilt = repack_archive(buffer.getvalue())

    assert [paragraph.text for paragraph in docx.Document(io.BytesIO(rebuilt)).paragraphs] == [
        "Arrêté préfectoral du 4 décembre 2026",
    ]


# A bomb of repeated letters is not valid XML either, so the test reads which check stopped it in the log.
@pytest.mark.parametrize(("member", "content_type", "name"), [
    ("content.xml", ODT_TYPE, "bombe.odt"),
    ("word/document.xml", DOCX_TYPE, "bombe.docx"),
])
def test_office_bomb_not_extracted(caplog, member, content_type, name):
    extraction = extract_text(zip_bomb(member, 40), content_type, name)

    assert extraction.method == "failed"
    assert extraction.text == ""
    assert f"member '{member}' unpacks to more than {MAX_XML_MEMBER_BYTES} bytes" in caplog.text

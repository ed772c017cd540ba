"""Size checks on .docx and .odt archives before their members are read."""

from __future__ import annotations

import io
import zipfile

import pytest

from app.core import archives
from app.core.archives import MAX_XML_MEMBER_BYTES, ArchiveTooLarge, check_archive_sizes
from app.search.text_extraction import extract_text

ODT_TYPE = "application/vnd.oasis.opendocument.text"
CHUNK = b"A" * (1024 * 1024)


def zip_bomb(member: str, megabytes: int, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """Return a small archive whose ``member`` unpacks to ``megabytes`` of one repeated letter."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr("mimetype", ODT_TYPE, compress_type=zipfile.ZIP_STORED)
        with archive.open(member, "w") as stream:
            for _ in range(megabytes):
                stream.write(CHUNK)
    return buffer.getvalue()


def test_xml_member_over_limit_refused():
    data = zip_bomb("content.xml", MAX_XML_MEMBER_BYTES // (1024 * 1024) + 1)

    assert len(data) < 200 * 1024
    with zipfile.ZipFile(io.BytesIO(data)) as archive, pytest.raises(ArchiveTooLarge, match="content.xml"):
        check_archive_sizes(archive)


def test_members_over_total_refused(monkeypatch):
    monkeypatch.setattr(archives, "MAX_UNPACKED_BYTES", 3 * 1024 * 1024)
    data = zip_bomb("Pictures/scan.png", 4)

    with zipfile.ZipFile(io.BytesIO(data)) as archive, pytest.raises(ArchiveTooLarge, match="members unpack"):
        check_archive_sizes(archive)


def test_bzip2_member_refused():
    data = zip_bomb("content.xml", 1, compression=zipfile.ZIP_BZIP2)

    with zipfile.ZipFile(io.BytesIO(data)) as archive, pytest.raises(ArchiveTooLarge, match="compression method"):
        check_archive_sizes(archive)


# A bomb of repeated letters is not valid XML either, so the test reads which check stopped it in the log.
@pytest.mark.parametrize(("member", "content_type", "name"), [
    ("content.xml", ODT_TYPE, "bombe.odt"),
    ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "bombe.docx"),
])
def test_office_bomb_not_extracted(caplog, member, content_type, name):
    extraction = extract_text(zip_bomb(member, 40), content_type, name)

    assert extraction.method == "failed"
    assert extraction.text == ""
    assert f"'{member}' unpacks to 41943040 bytes" in caplog.text

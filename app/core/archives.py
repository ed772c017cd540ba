"""Unpacking .docx and .odt files within limits before anything else reads them.

Both formats are zip archives. A file of 200 KB can hold an XML part of
200 MB of one repeated letter, and parsing that part took 600 MB of the web
worker's memory. The sizes an archive declares for its members cannot be
trusted: ``ZipFile.read()`` inflates all of a member's compressed bytes
before it cuts them to the declared size. So each member is read here in
small chunks and counted, and the archive is rebuilt from what was read.
python-docx, docxtpl and the XML parser then only ever see the rebuilt one.
"""

from __future__ import annotations

import io
import zipfile

# Limit on the unpacked size of all the members of one archive. Pictures in a .docx are already
# compressed, so a file within the upload limit of 50 MB stays well under it.
MAX_UNPACKED_BYTES = 128 * 1024 * 1024
# Limit on the unpacked size of one member holding XML, whatever its name. A document of 300 pages
# has a few megabytes of XML (estimate).
MAX_XML_MEMBER_BYTES = 32 * 1024 * 1024
# Compression methods read: Office and LibreOffice write these two.
SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
CHUNK_BYTES = 64 * 1024


class ArchiveTooLarge(ValueError):
    """Raised for an archive whose members unpack past the limits, or use another compression method."""


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, unpacked_before: int) -> bytes:
    """Return the bytes of ``member``, read in chunks; raise ArchiveTooLarge past a limit."""
    chunks: list[bytes] = []
    size = 0
    # XML is known by its name or by its first character, so a part renamed .bin keeps the XML limit.
    limit = MAX_XML_MEMBER_BYTES if member.filename.endswith((".xml", ".rels")) else MAX_UNPACKED_BYTES
    with archive.open(member) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            if not chunks and chunk.lstrip()[:1] == b"<":
                limit = MAX_XML_MEMBER_BYTES
            size += len(chunk)
            if size > limit:
                raise ArchiveTooLarge(f"member {member.filename!r} unpacks to more than {limit} bytes")
            if unpacked_before + size > MAX_UNPACKED_BYTES:
                raise ArchiveTooLarge(f"the members unpack to more than {MAX_UNPACKED_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def repack_archive(data: bytes) -> bytes:
    """Return the zip archive ``data`` rebuilt from its members as they unpack, in their order.

    Raises ArchiveTooLarge for a member past its limit or compressed another
    way, and zipfile.BadZipFile for a damaged archive. The ``mimetype`` member
    of an OpenDocument file stays first and uncompressed, as the format requires.
    """
    rebuilt = io.BytesIO()
    unpacked = 0
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for member in source.infolist():
            if member.compress_type not in SUPPORTED_COMPRESSION:
                raise ArchiveTooLarge(f"member {member.filename!r} uses compression method {member.compress_type}")
            content = _read_member(source, member, unpacked)
            unpacked += len(content)
            copy = zipfile.ZipInfo(member.filename, date_time=member.date_time)
            copy.compress_type = zipfile.ZIP_STORED if member.filename == "mimetype" else zipfile.ZIP_DEFLATED
            copy.external_attr = member.external_attr
            target.writestr(copy, content)
    return rebuilt.getvalue()

"""Size checks on .docx and .odt files before they are unpacked in the web worker.

Both formats are zip archives. A file of 200 KB can hold an XML part of
200 MB of one repeated letter, and parsing that part took 600 MB of the
worker's memory. The sizes an archive declares for its members bound what
Python's zipfile gives back for the stored and deflated members, so checking
them before reading anything stops such a file.
"""

from __future__ import annotations

import zipfile

# Limit on the unpacked size of all the members of one archive.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# Limit on the unpacked size of one XML member. A document of 300 pages has a few megabytes of XML (estimate).
MAX_XML_MEMBER_BYTES = 32 * 1024 * 1024
# zipfile caps the output of these two methods at the declared size while it
# decompresses, but the bzip2 and LZMA members decompress a whole chunk at once.
SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class ArchiveTooLarge(ValueError):
    """Raised for an archive whose members would unpack past the limits, or use another compression method."""


def check_archive_sizes(archive: zipfile.ZipFile) -> None:
    """Raise ArchiveTooLarge unless every member of ``archive`` may be read within the limits."""
    total = 0
    for member in archive.infolist():
        if member.compress_type not in SUPPORTED_COMPRESSION:
            raise ArchiveTooLarge(f"member {member.filename!r} uses compression method {member.compress_type}")
        if member.filename.endswith((".xml", ".rels")) and member.file_size > MAX_XML_MEMBER_BYTES:
            raise ArchiveTooLarge(f"member {member.filename!r} unpacks to {member.file_size} bytes")
        total += member.file_size
    if total > MAX_UNPACKED_BYTES:
        raise ArchiveTooLarge(f"the members unpack to {total} bytes")

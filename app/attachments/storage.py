"""Content-addressed store for attachment files.

Each file is stored once under ``<root>/objects/<aa>/<bb>/<sha256>``, where
``aa`` and ``bb`` are the first two pairs of hex digits of its SHA-256.
Uploads are first written to ``<root>/tmp`` and linked into place only when
complete, so a reader never sees a partial object. Database rows refer to a
file by its SHA-256, and :meth:`ContentStore.sweep` deletes unreferenced
objects after a grace period.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "BlobNotFound",
    "ContentStore",
    "CorruptBlob",
    "FileTooLarge",
    "InvalidDigest",
    "StorageError",
    "StoredBlob",
    "SweepProgress",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = "upload-"
# Name prefix of an object being deleted by sweep(), in the temporary folder.
_SWEPT_PREFIX = "swept-"
_SHARD = re.compile(r"[0-9a-f]{2}")
FIRST_SHARD = "00"


class StorageError(Exception):
    """Base class of store errors, with a stable ``code`` and the offending ``value``."""

    code = "storage_error"

    def __init__(self, value: str | int, message: str) -> None:
        super().__init__(message)
        self.value = value


class InvalidDigest(StorageError, ValueError):
    """Error for a SHA-256 string that is not 64 lowercase hexadecimal characters."""

    code = "invalid_sha256"

    def __init__(self, value: str) -> None:
        super().__init__(value, f"invalid SHA-256 {value!r}: expected 64 lowercase hexadecimal characters")


class FileTooLarge(StorageError):
    """Error for an upload larger than its limit, ``max_bytes``."""

    code = "file_too_large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, f"file too large: the limit is {max_bytes} bytes")
        self.max_bytes = max_bytes


class BlobNotFound(StorageError):
    """Error for a SHA-256 with no stored object."""

    code = "blob_not_found"

    def __init__(self, sha256: str) -> None:
        super().__init__(sha256, f"stored file {sha256} not found")
        self.sha256 = sha256


class CorruptBlob(StorageError):
    """Error for a stored object whose content no longer matches its SHA-256."""

    code = "corrupt_blob"

    def __init__(self, sha256: str) -> None:
        super().__init__(sha256, f"stored file {sha256} is corrupt: its content does not match its SHA-256")
        self.sha256 = sha256


@dataclass(frozen=True)
class StoredBlob:
    """A stored file: its SHA-256 (lowercase hex), size in bytes and object path."""

    sha256: str
    size: int
    path: Path


@dataclass
class SweepProgress:
    """The outcome of one call of ContentStore.sweep(): the deleted objects, and the shard to start from next, if any."""

    deleted: list[str]
    # None when the sweep reached the last shard.
    next_shard: str | None


@dataclass(frozen=True)
class StagedBlob:
    """A file written to the store's temporary folder, not stored yet: its SHA-256, size and temporary path."""

    sha256: str
    size: int
    path: Path


def _hash_file(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: file.read(CHUNK_SIZE), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _fsync_directory(path: Path) -> None:
    """Flush a directory entry so a new link survives a crash."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ContentStore:
    """Files stored under ``root`` by SHA-256 of their content.

    The store never writes outside ``root``, because object paths are built
    only from validated SHA-256 strings and temporary files go to ``root/tmp``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects_dir = self.root / "objects"
        self.tmp_dir = self.root / "tmp"
        self.objects_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    # --- Paths -----------------------------------------------------------

    def path_for(self, sha256: str) -> Path:
        """Return the object path for ``sha256``.

        Raises InvalidDigest (a ValueError) unless ``sha256`` is exactly 64
        lowercase hex characters, which rules out separators and ``..``.
        """
        if not isinstance(sha256, str) or _SHA256_HEX.fullmatch(sha256) is None:
            raise InvalidDigest(sha256)
        return self.objects_dir / sha256[0:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """Tell whether an object is stored for ``sha256`` (without checking its content)."""
        return self.path_for(sha256).is_file()

    # --- Writing ---------------------------------------------------------

    def put_stream(self, stream: BinaryIO, max_bytes: int) -> StoredBlob:
        """Store the content of ``stream`` and return its blob.

        The content is written to a temporary file (mode 0o600) in
        ``root/tmp`` and hashed on the way. More than ``max_bytes`` bytes
        raises FileTooLarge after the temporary file is removed. The file is
        fsynced, then hard-linked to its object path. When the object already
        exists with matching content, it is kept and the new copy dropped.
        Only an existing object whose content no longer matches its SHA-256
        is overwritten, by the verified new copy.
        """
        return self.publish(self.stage(stream, max_bytes))

    def stage(self, stream: BinaryIO, max_bytes: int) -> StagedBlob:
        """Write ``stream`` to a temporary file in ``root/tmp`` and return it, to check before publish() or discard().

        More than ``max_bytes`` bytes raises FileTooLarge after the temporary file is removed.
        """
        descriptor, temp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix=_TEMP_PREFIX, suffix=".part")
        temp_path = Path(temp_name)
        try:
            with os.fdopen(descriptor, "wb") as temp_file:
                sha256, size = self._copy_limited(stream, temp_file, max_bytes)
                temp_file.flush()
                os.fsync(temp_file.fileno())
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise
        return StagedBlob(sha256=sha256, size=size, path=temp_path)

    def publish(self, staged: StagedBlob) -> StoredBlob:
        """Store a staged file under its SHA-256 as put_stream() does, and remove its temporary file."""
        try:
            return self._publish(staged.path, staged.sha256, staged.size)
        finally:
            staged.path.unlink(missing_ok=True)

    @staticmethod
    def discard(staged: StagedBlob) -> None:
        staged.path.unlink(missing_ok=True)

    def put_bytes(self, data: bytes, max_bytes: int | None = None) -> StoredBlob:
        """Store ``data``. Without ``max_bytes``, no size limit applies."""
        limit = len(data) if max_bytes is None else max_bytes
        return self.put_stream(io.BytesIO(data), limit)

    @staticmethod
    def _copy_limited(source: BinaryIO, target: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Copy ``source`` to ``target``, returning the SHA-256 and the size."""
        digest = hashlib.sha256()
        size = 0
        while chunk := source.read(CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                raise FileTooLarge(max_bytes)
            digest.update(chunk)
            target.write(chunk)
        return digest.hexdigest(), size

    def _publish(self, temp_path: Path, sha256: str, size: int) -> StoredBlob:
        """Link a complete temporary file to its object path."""
        object_path = self.path_for(sha256)
        object_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.link(temp_path, object_path)
        except FileExistsError:
            return self._reuse_existing(temp_path, object_path, sha256, size)

        _fsync_directory(object_path.parent)
        logger.info("Stored blob %s (%s bytes)", sha256, size)
        return StoredBlob(sha256=sha256, size=size, path=object_path)

    def _reuse_existing(self, temp_path: Path, object_path: Path, sha256: str, size: int) -> StoredBlob:
        try:
            with object_path.open("rb") as existing:
                existing_sha256 = _hash_file(existing)
        except FileNotFoundError:
            # If sweep() deleted the object after os.link() failed, link again.
            return self._publish(temp_path, sha256, size)

        if existing_sha256 == sha256:
            # Refresh the time stamp so sweep() grants the new reference its grace period.
            try:
                os.utime(object_path)
            except FileNotFoundError:
                return self._publish(temp_path, sha256, size)
            logger.info("Blob %s already stored, reusing it", sha256)
        else:
            logger.error(
                "Hash mismatch for blob %s: stored file hashes to %s, replacing it with the new upload",
                sha256,
                existing_sha256,
            )
            os.replace(temp_path, object_path)
            _fsync_directory(object_path.parent)
        return StoredBlob(sha256=sha256, size=size, path=object_path)

    # --- Reading ---------------------------------------------------------

    def open_verified(self, sha256: str) -> BinaryIO:
        """Open a stored object for reading after checking its SHA-256.

        The hash is computed on the returned handle, which is then rewound,
        so the caller reads exactly the bytes that were checked. Raises
        BlobNotFound when no object exists and CorruptBlob on a mismatch.
        """
        path = self.path_for(sha256)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None

        try:
            actual_sha256 = _hash_file(file)
            if actual_sha256 != sha256:
                logger.error("Hash mismatch for blob %s: stored file hashes to %s", sha256, actual_sha256)
                raise CorruptBlob(sha256)
            file.seek(0)
        except BaseException:
            file.close()
            raise
        return file

    def read_verified(self, sha256: str) -> Path:
        """Return the path of a stored object after checking its SHA-256.

        Raises BlobNotFound or CorruptBlob like :meth:`open_verified`.
        """
        with self.open_verified(sha256):
            pass
        return self.path_for(sha256)

    # --- Garbage collection ----------------------------------------------

    def sweep(
        self, referenced: Callable[[list[str]], Collection[str]], older_than: timedelta, batch_size: int = 500,
        first_shard: str = FIRST_SHARD, deadline: float | None = None,
    ) -> SweepProgress:
        """Delete unreferenced objects and stale temporary files, shard by shard from ``first_shard``.

        An object is a candidate when its modification time is more than
        ``older_than`` ago, so a file stored just before its database row
        commits is kept. ``referenced`` is called with up to ``batch_size``
        candidates and returns those that rows still refer to; the others are
        deleted. Temporary files older than ``older_than`` are deleted too.
        Empty shard directories are left in place because a concurrent
        put_stream() may be about to link into them.

        The shards are the directories named by the first two hex digits. With
        a ``deadline`` (a time.monotonic() value), the sweep stops after the
        shard during which it passed, and the progress names the next shard.

        An upload that reuses an object refreshes its time stamp, and one that
        finds it gone links its own copy. The sweep first renames the object
        out of place, then deletes it only if its time stamp is still old, and
        links it back otherwise. So an upload at the same moment loses nothing.
        An object left out of place by a sweep that stopped in between is put
        back by the next one.
        """
        self._restore_swept()
        cutoff = time.time() - older_than.total_seconds()
        progress = SweepProgress(deleted=[], next_shard=None)
        shards = sorted(path.name for path in self.objects_dir.iterdir() if _SHARD.fullmatch(path.name))
        for position, shard in enumerate(name for name in shards if name >= first_shard):
            if position > 0 and deadline is not None and time.monotonic() > deadline:
                progress.next_shard = shard
                break
            candidates = [
                path.name for path in self.objects_dir.glob(f"{shard}/*/*")
                if _SHA256_HEX.fullmatch(path.name) is not None and _older(path, cutoff)
            ]
            for start in range(0, len(candidates), batch_size):
                batch = candidates[start:start + batch_size]
                in_use = set(referenced(batch))
                progress.deleted.extend(
                    sha256 for sha256 in batch if sha256 not in in_use and self._delete_object(sha256, cutoff)
                )

        for temp_path in self.tmp_dir.glob(f"{_TEMP_PREFIX}*"):
            if _older(temp_path, cutoff):
                temp_path.unlink(missing_ok=True)
                logger.info("Deleted stale temporary file %s", temp_path.name)
        progress.deleted.sort()
        return progress

    def _restore_swept(self) -> None:
        """Put back the objects a sweep renamed out of place and did not finish with."""
        for moved in self.tmp_dir.glob(f"{_SWEPT_PREFIX}*"):
            sha256 = moved.name.removeprefix(_SWEPT_PREFIX)
            if _SHA256_HEX.fullmatch(sha256) is None:
                continue
            try:
                os.link(moved, self.path_for(sha256))
                logger.warning("Put back blob %s, left out of place by an interrupted sweep", sha256)
            except FileExistsError:
                pass
            moved.unlink()

    def _delete_object(self, sha256: str, cutoff: float) -> bool:
        object_path = self.path_for(sha256)
        moved = self.tmp_dir / f"{_SWEPT_PREFIX}{sha256}"
        try:
            os.replace(object_path, moved)
        except FileNotFoundError:
            return False
        if _older(moved, cutoff):
            moved.unlink()
            logger.info("Deleted unreferenced blob %s", sha256)
            return True
        # An upload reused it meanwhile: put it back, unless that upload already linked its own copy.
        try:
            os.link(moved, object_path)
        except FileExistsError:
            pass
        moved.unlink()
        return False


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.is_file() and path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False

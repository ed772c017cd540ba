import hashlib
import io
import logging
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.attachments.storage import (
    BlobNotFound,
    ContentStore,
    CorruptBlob,
    FileTooLarge,
    InvalidDigest,
)

CONTENT = b"Arr\xc3\xaat\xc3\xa9 pr\xc3\xa9fectoral n\xc2\xb02026-114\n" * 1000
CONTENT_SHA256 = hashlib.sha256(CONTENT).hexdigest()


def _files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def _age(path: Path, seconds: float) -> None:
    """Set the modification time of ``path`` to ``seconds`` ago."""
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


# --- Writing -------------------------------------------------------------


def test_put_stream_returns_hash_and_size(store: ContentStore) -> None:
    blob = store.put_stream(io.BytesIO(CONTENT), max_bytes=len(CONTENT))
    assert blob.sha256 == CONTENT_SHA256
    assert blob.size == len(CONTENT)


def test_put_stream_object_path(store: ContentStore) -> None:
    blob = store.put_stream(io.BytesIO(CONTENT), max_bytes=10_000_000)
    expected = store.root / "objects" / CONTENT_SHA256[:2] / CONTENT_SHA256[2:4] / CONTENT_SHA256
    assert blob.path == expected
    assert expected.read_bytes() == CONTENT


def test_put_stream_file_mode(store: ContentStore) -> None:
    blob = store.put_stream(io.BytesIO(CONTENT), max_bytes=10_000_000)
    assert blob.path.stat().st_mode & 0o777 == 0o600


def test_put_stream_same_content_once(store: ContentStore) -> None:
    first = store.put_bytes(CONTENT)
    second = store.put_stream(io.BytesIO(CONTENT), max_bytes=10_000_000)
    assert first == second
    assert _files_under(store.root / "objects") == [first.path]


def test_put_stream_leaves_no_temp(store: ContentStore) -> None:
    store.put_bytes(CONTENT)
    store.put_bytes(CONTENT)
    assert _files_under(store.tmp_dir) == []


def test_put_stream_empty_file(store: ContentStore) -> None:
    blob = store.put_bytes(b"")
    assert blob.sha256 == hashlib.sha256(b"").hexdigest()
    assert blob.size == 0


def test_put_stream_exact_limit_accepted(store: ContentStore) -> None:
    blob = store.put_stream(io.BytesIO(b"12345"), max_bytes=5)
    assert blob.size == 5


def test_put_stream_too_large(store: ContentStore) -> None:
    with pytest.raises(FileTooLarge) as caught:
        store.put_stream(io.BytesIO(CONTENT), max_bytes=len(CONTENT) - 1)
    assert caught.value.max_bytes == len(CONTENT) - 1
    assert caught.value.code == "file_too_large"
    assert _files_under(store.tmp_dir) == []
    assert _files_under(store.root / "objects") == []


def test_put_stream_repairs_corrupt_object(store: ContentStore, caplog: pytest.LogCaptureFixture) -> None:
    blob = store.put_bytes(CONTENT)
    blob.path.write_bytes(b"damaged")
    with caplog.at_level(logging.ERROR, logger="app.attachments.storage"):
        store.put_bytes(CONTENT)
    assert blob.path.read_bytes() == CONTENT
    assert "Hash mismatch" in caplog.text


def test_put_stream_logs_stored_blob(store: ContentStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.attachments.storage"):
        store.put_bytes(CONTENT)
    assert CONTENT_SHA256 in caplog.text


def test_put_stream_writes_only_under_root(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    store.put_bytes(CONTENT)
    outside = [path for path in tmp_path.rglob("*") if not path.is_relative_to(store.root)]
    assert outside == []


# --- Reading -------------------------------------------------------------


def test_open_verified_returns_content(store: ContentStore) -> None:
    store.put_bytes(CONTENT)
    with store.open_verified(CONTENT_SHA256) as file:
        assert file.read() == CONTENT


def test_read_verified_returns_path(store: ContentStore) -> None:
    blob = store.put_bytes(CONTENT)
    assert store.read_verified(CONTENT_SHA256) == blob.path


def test_open_verified_detects_corruption(store: ContentStore, caplog: pytest.LogCaptureFixture) -> None:
    blob = store.put_bytes(CONTENT)
    blob.path.write_bytes(CONTENT[:-1] + b"?")
    with caplog.at_level(logging.ERROR, logger="app.attachments.storage"), pytest.raises(CorruptBlob) as caught:
        store.open_verified(CONTENT_SHA256)
    assert caught.value.sha256 == CONTENT_SHA256
    assert caught.value.code == "corrupt_blob"
    assert "Hash mismatch" in caplog.text


def test_read_verified_detects_corruption(store: ContentStore) -> None:
    blob = store.put_bytes(CONTENT)
    blob.path.write_bytes(b"")
    with pytest.raises(CorruptBlob):
        store.read_verified(CONTENT_SHA256)


def test_open_verified_missing(store: ContentStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(BlobNotFound) as caught:
        store.open_verified(missing)
    assert caught.value.sha256 == missing
    assert caught.value.code == "blob_not_found"


def test_exists_after_put(store: ContentStore) -> None:
    assert store.exists(CONTENT_SHA256) is False
    store.put_bytes(CONTENT)
    assert store.exists(CONTENT_SHA256) is True


# --- Digest validation ---------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        CONTENT_SHA256.upper(),
        CONTENT_SHA256[:-1],
        CONTENT_SHA256 + "0",
        CONTENT_SHA256 + "\n",
        "../../../../etc/passwd".ljust(64, "0"),
        "g" * 64,
        "/" + "0" * 63,
        "０" * 64,
    ],
    ids=["empty", "upper", "short", "long", "newline", "traversal", "non-hex", "slash", "fullwidth"],
)
def test_path_for_rejects_bad_digest(store: ContentStore, value: str) -> None:
    with pytest.raises(InvalidDigest) as caught:
        store.path_for(value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "invalid_sha256"


def test_open_verified_rejects_bad_digest(store: ContentStore) -> None:
    with pytest.raises(ValueError):
        store.open_verified("../" + CONTENT_SHA256[3:])


# --- Sweep ---------------------------------------------------------------


def _nothing_referenced(candidates: list[str]) -> set[str]:
    return set()


def test_sweep_deletes_old_unreferenced(store: ContentStore) -> None:
    blob = store.put_bytes(b"orphan")
    _age(blob.path, 7200)
    deleted = store.sweep(_nothing_referenced, older_than=timedelta(hours=1)).deleted
    assert deleted == [blob.sha256]
    assert not blob.path.exists()


def test_sweep_keeps_referenced(store: ContentStore) -> None:
    blob = store.put_bytes(CONTENT)
    _age(blob.path, 7200)
    deleted = store.sweep(lambda candidates: {CONTENT_SHA256} & set(candidates), older_than=timedelta(hours=1)).deleted
    assert deleted == []
    assert blob.path.exists()


def test_sweep_keeps_young_unreferenced(store: ContentStore) -> None:
    blob = store.put_bytes(CONTENT)
    deleted = store.sweep(_nothing_referenced, older_than=timedelta(hours=1)).deleted
    assert deleted == []
    assert blob.path.exists()


def test_sweep_reuse_refreshes_grace(store: ContentStore) -> None:
    blob = store.put_bytes(CONTENT)
    _age(blob.path, 7200)
    store.put_bytes(CONTENT)
    deleted = store.sweep(_nothing_referenced, older_than=timedelta(hours=1)).deleted
    assert deleted == []


def test_sweep_removes_stale_temp(store: ContentStore) -> None:
    stale = store.tmp_dir / "upload-stale.part"
    stale.write_bytes(b"partial")
    _age(stale, 7200)
    fresh = store.tmp_dir / "upload-fresh.part"
    fresh.write_bytes(b"partial")
    store.sweep(_nothing_referenced, older_than=timedelta(hours=1))
    assert not stale.exists()
    assert fresh.exists()


def test_sweep_ignores_foreign_files(store: ContentStore) -> None:
    foreign = store.objects_dir / "ab" / "cd" / "README"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("not an object")
    _age(foreign, 7200)
    store.sweep(_nothing_referenced, older_than=timedelta(hours=1))
    assert foreign.exists()


def test_sweep_keeps_object_reused_meanwhile(store: ContentStore) -> None:
    blob = store.put_bytes(CONTENT)
    _age(blob.path, 7200)

    def upload_meanwhile(candidates: list[str]) -> set[str]:
        # A registration stores the same letter while the sweep reads the references.
        store.put_bytes(CONTENT)
        return set()

    deleted = store.sweep(upload_meanwhile, older_than=timedelta(hours=1)).deleted
    assert deleted == []
    assert store.read_verified(CONTENT_SHA256) == blob.path
    assert list(store.tmp_dir.iterdir()) == []


def test_sweep_asks_for_references_in_batches(store: ContentStore) -> None:
    # Five letters of one shard, so that its candidates come in batches.
    by_shard: dict[str, list[bytes]] = {}
    number = 0
    while max((len(contents) for contents in by_shard.values()), default=0) < 5:
        content = f"letter {number}".encode()
        by_shard.setdefault(hashlib.sha256(content).hexdigest()[:2], []).append(content)
        number += 1
    blobs = [store.put_bytes(content) for content in max(by_shard.values(), key=len)]
    for blob in blobs:
        _age(blob.path, 7200)
    batch_sizes: list[int] = []

    def first_referenced(candidates: list[str]) -> set[str]:
        batch_sizes.append(len(candidates))
        return {blobs[0].sha256} & set(candidates)

    deleted = store.sweep(first_referenced, older_than=timedelta(hours=1), batch_size=2).deleted
    assert batch_sizes == [2, 2, 1]
    assert deleted == sorted(blob.sha256 for blob in blobs[1:])
    assert blobs[0].path.exists()


def test_sweep_stops_after_the_shard_of_its_deadline(store: ContentStore) -> None:
    blobs = [store.put_bytes(f"letter {number}".encode()) for number in range(40)]
    for blob in blobs:
        _age(blob.path, 7200)
    shards = sorted({blob.sha256[:2] for blob in blobs})

    first = store.sweep(_nothing_referenced, older_than=timedelta(hours=1), deadline=0.0)
    assert first.next_shard == shards[1]
    assert {sha256[:2] for sha256 in first.deleted} == {shards[0]}

    rest = store.sweep(_nothing_referenced, older_than=timedelta(hours=1), first_shard=first.next_shard)
    assert rest.next_shard is None
    assert sorted(first.deleted + rest.deleted) == sorted(blob.sha256 for blob in blobs)


def test_sweep_restores_object_left_aside(store: ContentStore) -> None:
    blob = store.put_bytes(CONTENT)
    # What a sweep stopped between its rename and its check leaves.
    os.replace(blob.path, store.tmp_dir / f"swept-{CONTENT_SHA256}")

    store.sweep(_nothing_referenced, older_than=timedelta(hours=1))

    assert store.read_verified(CONTENT_SHA256) == blob.path
    assert list(store.tmp_dir.iterdir()) == []

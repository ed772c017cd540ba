"""Convert .docx files to PDF with LibreOffice headless (``soffice --headless --convert-to pdf``).

Each process uses its own LibreOffice profile directory and runs one
conversion at a time: two soffice processes on the same profile hand their
work to each other or fail. One call converts many files, which costs much
less than one call per file because LibreOffice starts once.
Callers run conversions outside any database transaction: they take seconds.

Settings are read from the Flask config when an application is active.
``SOFFICE_BINARY`` is the program (default "soffice", looked up in PATH).
``SOFFICE_TIMEOUT_SECONDS`` limits one call (default 120, plus
SECONDS_PER_FILE for each further file in it). ``SOFFICE_PROFILE_DIR`` is
where the profile directories go (default: the system temporary directory).

One soffice call was seen to skip files: given 300 .docx files it wrote the
PDFs of the first 245 and exited with code 0 (LibreOffice 7.4, Debian 12, on
a loaded machine). So ``convert_many`` hands soffice at most BATCH_SIZE files
per call, and ``convert_files`` converts the missing ones once more before
reporting a failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from flask import current_app, has_app_context

log = logging.getLogger(__name__)

_lock = threading.Lock()
DEFAULT_TIMEOUT_SECONDS = 120
# Time allowed per file on top of the call's timeout. bench/acknowledgements.py measured 0.2 to 0.33 s
# per one-page letter in batches, on 2 shared cores.
SECONDS_PER_FILE = 10
# Files per soffice call: the measured calls of 200 files converted every file, one call of 300 did not.
BATCH_SIZE = 100


class ConversionUnavailable(Exception):
    """Error for a LibreOffice that is not installed, or not at the path SOFFICE_BINARY gives."""


class ConversionFailed(Exception):
    """Error for a soffice call that failed, timed out or produced no PDF; the message gives the reason."""


def _setting(name: str, default: object) -> object:
    if has_app_context():
        return current_app.config.get(name, default)
    return default


def soffice_binary() -> str | None:
    """Return the path of soffice, or None when LibreOffice is not installed."""
    configured = str(_setting("SOFFICE_BINARY", "soffice"))
    return shutil.which(configured)


def _profile_dir() -> Path:
    configured = _setting("SOFFICE_PROFILE_DIR", None)
    base = Path(str(configured)) if configured else Path(tempfile.gettempdir()) / "estafette-soffice"
    directory = base / f"profile-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def convert_files(paths: list[Path], output_dir: Path, timeout: float | None = None) -> list[Path]:
    """Convert every .docx of ``paths`` to a PDF of the same stem in ``output_dir``, in one soffice call.

    Files the call leaves without a PDF are converted once more in a second
    call. Returns the PDF paths in the order of ``paths``. Raises
    ConversionUnavailable when soffice is missing and ConversionFailed when a
    call fails, times out or a PDF is still missing.
    """
    binary = soffice_binary()
    if binary is None:
        raise ConversionUnavailable("LibreOffice (soffice) is not installed")
    if not paths:
        return []
    results = [output_dir / f"{path.stem}.pdf" for path in paths]
    _run_soffice(binary, paths, output_dir, timeout)
    missing = [path for path, result in zip(paths, results, strict=True) if not result.is_file()]
    if missing:
        log.warning("soffice left %s of %s files without a PDF; converting them again", len(missing), len(paths))
        _run_soffice(binary, missing, output_dir, timeout)
        still_missing = [path.name for path, result in zip(paths, results, strict=True) if not result.is_file()]
        if still_missing:
            log.error("soffice produced no PDF for %s", ", ".join(still_missing))
            raise ConversionFailed(f"LibreOffice produced no PDF for {len(still_missing)} of {len(paths)} files")
    return results


def _run_soffice(binary: str, paths: list[Path], output_dir: Path, timeout: float | None) -> None:
    base = float(timeout or _setting("SOFFICE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))  # type: ignore[arg-type]
    limit = base + SECONDS_PER_FILE * (len(paths) - 1)
    command = [
        binary, f"-env:UserInstallation={_profile_dir().as_uri()}", "--headless", "--norestore", "--nologo",
        "--convert-to", "pdf", "--outdir", str(output_dir), *[str(path) for path in paths],
    ]
    with _lock:
        try:
            completed = subprocess.run(command, capture_output=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            log.error("soffice timed out after %s s converting %s files", limit, len(paths))
            raise ConversionFailed(f"LibreOffice did not finish within {limit:g} seconds") from None
        except OSError as exc:
            raise ConversionUnavailable(f"LibreOffice could not be started: {exc}") from exc
    if completed.returncode != 0:
        detail = completed.stderr.decode("utf-8", "replace").strip()[-500:]
        log.error("soffice exited with code %s on %s files: %s", completed.returncode, len(paths), detail)
        raise ConversionFailed(f"LibreOffice exited with code {completed.returncode}")


def convert_many(documents: list[bytes], timeout: float | None = None) -> list[bytes]:
    """Convert .docx contents to PDF contents, BATCH_SIZE files per soffice call, keeping their order."""
    with tempfile.TemporaryDirectory(prefix="estafette-convert-") as work:
        work_dir = Path(work)
        paths = []
        for index, data in enumerate(documents):
            path = work_dir / f"document-{index:05d}.docx"
            path.write_bytes(data)
            paths.append(path)
        output_dir = work_dir / "pdf"
        output_dir.mkdir()
        pdfs: list[bytes] = []
        for offset in range(0, len(paths), BATCH_SIZE):
            converted = convert_files(paths[offset:offset + BATCH_SIZE], output_dir, timeout)
            pdfs.extend(path.read_bytes() for path in converted)
        return pdfs


def convert_to_pdf(document: bytes, timeout: float | None = None) -> bytes:
    """Convert one .docx content to PDF; see convert_files for the errors."""
    return convert_many([document], timeout)[0]

"""Markers shared by the document and acknowledgement tests."""

from __future__ import annotations

import shutil

import pytest

SOFFICE = shutil.which("soffice")
needs_soffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")

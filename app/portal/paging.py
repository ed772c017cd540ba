"""The page number of a paginated list, read from the request."""

from __future__ import annotations

from flask import request

# Past the last page a list is empty. The bound keeps the SQL offset within a 64-bit integer.
MAX_PAGE = 1_000_000


def requested_page() -> int:
    """Return the ``page`` argument of the request between 1 and MAX_PAGE, or 1 when it is missing or no number."""
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)

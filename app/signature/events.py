"""What the signature book must hear from the documents area.

``app.documents`` calls ``document_changed`` each time it saves a new version
of a document, so that a circuit running on an older version restarts its
approvals on the new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.documents.models import Document, DocumentVersion
    from app.organisation.context import UserContext


def document_changed(document: Document, version: DocumentVersion, actor: UserContext) -> None:
    """Restart the approvals of a running circuit on ``version``; no circuit, nothing to do."""
    # Filled by the signature book work in progress (issue 5).
    return None

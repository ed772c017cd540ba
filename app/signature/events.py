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
    """Restart the approvals of a running circuit on ``version``; no circuit, nothing to do.

    Runs in the caller's transaction: the restart, its history entry and its
    notifications are kept exactly when the new version is.
    """
    from app.signature.operations import restart_on_new_version

    restart_on_new_version(document, version, actor)

"""Import of every model module, so that the metadata is complete for Alembic."""

from app.attachments.models import Attachment  # noqa: F401
from app.configuration.models import SchemaVersion  # noqa: F401
from app.correspondents.models import Correspondent  # noqa: F401
from app.mail.models import ChronoCounter, HistoryEntry, Mail, MailCorrespondent  # noqa: F401
from app.organisation.models import Department, UserDepartment  # noqa: F401
from app.search.models import OutboxEvent  # noqa: F401

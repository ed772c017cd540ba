"""Import of every model module, so that the metadata is complete for Alembic."""

from app.absences.models import Absence  # noqa: F401
from app.attachments.models import Attachment  # noqa: F401
from app.configuration.models import SchemaVersion  # noqa: F401
from app.correspondents.models import Correspondent  # noqa: F401
from app.deadlines.models import MissingDocumentsRecord  # noqa: F401
from app.distribution.models import DistributionEntry, ReadMark  # noqa: F401
from app.documents.models import Document, DocumentVersion  # noqa: F401
from app.mail.models import ChronoCounter, HistoryEntry, Mail, MailCorrespondent  # noqa: F401
from app.notifications.models import EmailMessage, Notification, UserPreference  # noqa: F401
from app.organisation.models import Department, UserDepartment  # noqa: F401
from app.reminders.models import Reminder  # noqa: F401
from app.scheduler.models import ScheduledJob, SchedulerLease  # noqa: F401
from app.search.models import OutboxEvent  # noqa: F401
from app.signature.models import CircuitMember, SignatureCircuit, SignatureProfile  # noqa: F401
from app.statistics.models import MailStatistics, StatisticsCount, StatisticsState  # noqa: F401

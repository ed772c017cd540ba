"""Errors raised by operations and shown to users as translated messages."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l


class EstafetteError(Exception):
    """Base of the errors a user may see; ``message`` is translated when rendered."""

    http_status = 400
    default_message = _l("The request could not be completed.")

    def __init__(self, message: Any = None, **params: Any):
        self._message = message if message is not None else self.default_message
        self.params = params
        super().__init__(str(self._message))

    @property
    def message(self) -> str:
        text = str(self._message)
        return text % self.params if self.params else text


class PermissionDenied(EstafetteError):
    http_status = 403
    default_message = _l("You do not have permission to do this.")


class NotFound(EstafetteError):
    """Raised for missing records and for records the user may not see alike."""

    http_status = 404
    default_message = _l("This item does not exist or you do not have access to it.")


class ValidationFailed(EstafetteError):
    """Input is invalid; ``field_errors`` maps a form field name to its messages."""

    http_status = 400
    default_message = _l("Some values are invalid: correct the fields marked in red.")

    def __init__(self, field_errors: dict[str, list[str]], message: Any = None):
        super().__init__(message)
        self.field_errors = field_errors
        # The positions of the refused files among the uploaded ones, when the input had files.
        self.rejected_uploads: tuple[int, ...] = ()

    def __str__(self) -> str:
        details = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in self.field_errors.items())
        return f"{self.message} ({details})" if details else self.message


def message_without_form(error: EstafetteError) -> str:
    """Return what to flash for ``error`` on a page that shows no form: its fields' messages, else its message.

    The general message of ValidationFailed points to fields marked in red,
    which a page reached by a redirect does not show.
    """
    if isinstance(error, ValidationFailed) and error.field_errors:
        return " ".join(message for messages in error.field_errors.values() for message in messages)
    return str(error.message)


class Conflict(EstafetteError):
    http_status = 409
    default_message = _l("Someone else changed this mail at the same time: reload the page and try again.")

"""Request hooks: error pages, security headers, template helpers, shipped assets."""

from __future__ import annotations

import contextlib
import logging
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, jsonify, render_template, request, session
from flask_babel import format_datetime, get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from app.core.errors import EstafetteError
from app.documents.fields import long_date
from app.mail.menu_counts import cached_for_user, note_request_start

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

# Every asset comes from our own server: the portal runs on closed networks.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; object-src 'self'; frame-src 'self'; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _error_response(status: int, message: str) -> Any:
    if _wants_json():
        return jsonify({"error": message}), status
    return render_template("estafette/error.html", status=status, message=message), status


def _register_error_handlers(app: Flask) -> None:
    from flask_babel import gettext as _

    @app.errorhandler(EstafetteError)
    def _on_estafette_error(error: EstafetteError) -> Any:
        log.info("%s %s refused (%s): %s", request.method, request.path, error.http_status, error.message)
        return _error_response(error.http_status, error.message)

    @app.errorhandler(CSRFError)
    def _on_csrf_error(error: CSRFError) -> Any:
        log.warning("CSRF check failed on %s %s: %s", request.method, request.path, error.description)
        return _error_response(400, _("The form has expired or was not sent by this portal: reload the page and submit it again."))

    @app.errorhandler(RequestEntityTooLarge)
    def _on_too_large(error: RequestEntityTooLarge) -> Any:
        limit = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        log.warning("request to %s rejected: larger than %s MB", request.path, limit)
        return _error_response(413, _("The files sent are larger than the limit of %(limit)s MB in total.", limit=limit))

    @app.errorhandler(404)
    def _on_not_found(error: HTTPException) -> Any:
        return _error_response(404, _("This page does not exist."))

    @app.errorhandler(403)
    def _on_forbidden(error: HTTPException) -> Any:
        # Flask-AppBuilder's own views abort with 403 when a role lacks their permission.
        log.info("%s %s forbidden", request.method, request.path)
        return _error_response(403, _("You do not have permission to open this page."))

    @app.errorhandler(405)
    def _on_method_not_allowed(error: MethodNotAllowed) -> Any:
        # For example an action URL, which only its form posts to, typed in the address bar.
        log.info("%s %s: method not allowed", request.method, request.path)
        body, status = _error_response(
            405, _("This page cannot be opened from its address: go back and use the button that leads to it.")
        )
        return body, status, {"Allow": ", ".join(error.valid_methods or [])}

    @app.errorhandler(Exception)
    def _on_unexpected(error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return error
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _error_response(500, _("An unexpected error occurred. It has been logged; try again or contact your administrator."))


def _add_security_headers(response: Any) -> Any:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    return response


def _language() -> str:
    """Return the language of the request, "fr" or "en", the key of the configuration's labels."""
    locale = get_locale()
    return locale.language if locale else "fr"


def _legal_date(value: date | None, style: str = "short") -> str:
    """Format a legal date: dd/mm/yyyy, or "4 décembre 2026" with style="long"."""
    if value is None:
        return ""
    if style == "long":
        # As in generated documents: "1er mai 2026", and "19 January 2027" where Babel's "en" is American.
        return long_date(value, _language())
    return value.strftime("%d/%m/%Y")


def _file_size(size: int) -> str:
    """Format a size in bytes as "2,1 Ko" / "2.1 kB" in the current locale."""
    from flask_babel import format_decimal
    from flask_babel import gettext as _

    if size < 1024 * 1024:
        return _("%(size)s KB", size=format_decimal(round(size / 1024, 1), "#,##0.0"))
    return _("%(size)s MB", size=format_decimal(round(size / (1024 * 1024), 1), "#,##0.0"))


def _labelled(values: list[Any], labels: dict[str, str]) -> list[str]:
    """Return each of ``values`` as its entry in ``labels``, or as itself when it has none."""
    return [labels.get(str(value), str(value)) for value in values]


def _basket_count(count: int) -> str:
    """Format a menu count, "999+" when it reached the cap of basket_counts()."""
    from app.mail.baskets import MENU_COUNT_CAP

    return f"{MENU_COUNT_CAP - 1}+" if count >= MENU_COUNT_CAP else str(count)


def _local_datetime(value: datetime | None) -> str:
    """Format a UTC timestamp in Europe/Paris time."""
    if value is None:
        return ""
    return format_datetime(value, "dd/MM/yyyy HH:mm")


def _template_context() -> dict[str, Any]:
    from app.configuration.operations import ConfigurationMissing, current_configuration
    from app.extensions import appbuilder
    from app.mail.baskets import basket_counts
    from app.organisation.context import current_user_context

    base = {"appbuilder": appbuilder, "base_template": appbuilder.base_template}
    user = current_user_context()
    if user is None:
        return {**base, "estafette_user": None, "estafette_baskets": []}
    try:
        configuration = current_configuration()
    except ConfigurationMissing:
        return {**base, "estafette_user": user, "estafette_baskets": []}
    return {
        **base,
        "estafette_user": user,
        "estafette_baskets": basket_counts(user, configuration),
        "estafette_locale": str(get_locale() or "fr"),
    }


def _routing_rule_names(rule_set_id: str, rule_id: str) -> tuple[str, str]:
    """Return the labels of a routing rule and of its rule set in the user's language, their ids if unknown.

    A history entry names the rules that routed its mail; the rules may have
    been renamed or removed since, so an id stays the fallback.
    """
    from app.configuration.operations import current_configuration

    language = _language()
    # Stored JSON: written by this code as text, but shown as text whatever it holds.
    rule_set_id, rule_id = str(rule_set_id), str(rule_id)
    rule_set = current_configuration().routing.get(rule_set_id)
    if rule_set is None:
        return rule_id, rule_set_id
    rule = next((item for item in rule_set.rules if item.id == rule_id), None)
    rule_label = rule.labels.get(language) if rule is not None and rule.labels else None
    return rule_label or rule_id, rule_set.labels.get(language) or rule_set_id


# Labels of the conditions of a routing rule, as the history of a routed mail shows them.
ROUTING_CONDITIONS = {
    "mail_types": _l("Type of mail"),
    "categories": _l("Category"),
    "channels": _l("Channel"),
    "priorities": _l("Priority"),
    "sender_kinds": _l("Kind of sender"),
    "sender_organisations": _l("Sender's organisation"),
    "sender_email_domains": _l("Sender's e-mail domain"),
    "subject_words": _l("Words of the subject"),
}


def _routing_check(condition: str, value: Any) -> tuple[str, str]:
    """Return a condition of a fired routing rule and the mail's value, as the user's language writes them.

    A mail type, a category, a channel, a priority or a kind of sender shows by
    its label, a field by the label that a mail type gives it and an amount as
    the language writes numbers. Anything unknown shows as stored.
    """
    from app.configuration.operations import current_configuration
    from app.core.parsing import format_decimal
    from app.mail.forms import CHANNEL_CHOICES, KIND_CHOICES, PRIORITY_CHOICES
    from app.mail.views import CATEGORY_LABELS

    language = _language()
    configuration = current_configuration()
    condition = str(condition)
    if isinstance(value, (list, tuple)):
        # Conditions on words store the words found, a list.
        return _routing_check(condition, None)[0], ", ".join(_routing_check(condition, item)[1] for item in value)
    text = "" if value is None else str(value)
    if condition.startswith("fields."):
        field_id = condition.removeprefix("fields.")
        field = next((spec.field(field_id) for spec in configuration.mail_types.values() if spec.field(field_id)), None)
        if field is None:
            return condition, text
        if field.type == "decimal" and value not in (None, ""):
            # Routing runs before the fields are cleaned, so the value may be stored as the agent typed it.
            # ArithmeticError covers InvalidOperation and Overflow (a value such as 1e999999999).
            with contextlib.suppress(ArithmeticError):
                text = format_decimal(Decimal(str(value)), language)
        elif field.type == "choice":
            text = next((choice.labels.get(language) for choice in field.choices if choice.value == value), text)
        return field.labels.get(language) or field_id, text
    values: dict[str, Any] = {
        "mail_types": {key: spec.labels.get(language) for key, spec in configuration.mail_types.items()},
        "categories": CATEGORY_LABELS,
        "channels": dict(CHANNEL_CHOICES),
        "priorities": dict(PRIORITY_CHOICES),
        "sender_kinds": dict(KIND_CHOICES),
    }.get(condition, {})
    label = ROUTING_CONDITIONS.get(condition)
    return (str(label) if label else condition), str(values.get(text, text))


def _routing_expected(condition: str, expected: Any) -> str:
    """Return what a routing condition expects, in words: its values by their labels, "=", "one of", a range."""
    def words(value: Any) -> str:
        return _routing_check(condition, value)[1]

    if isinstance(expected, (list, tuple)):
        return ", ".join(words(item) for item in expected)
    if not isinstance(expected, dict):
        return "" if expected is None else str(expected)
    if "equals" in expected:
        return f"= {words(expected['equals'])}"
    if "in" in expected and isinstance(expected["in"], list):
        return str(_l("one of %(values)s", values=", ".join(words(item) for item in expected["in"])))
    if isinstance(expected.get("range"), dict):
        low, high = expected["range"].get("min"), expected["range"].get("max")
        bounds = [f"≥ {words(low)}"] if low is not None else []
        bounds += [f"≤ {words(high)}"] if high is not None else []
        return " ".join(bounds)
    if "pattern" in expected:
        return str(_l("matches %(pattern)s", pattern=expected["pattern"]))
    return ", ".join(f"{key}: {value}" for key, value in expected.items())


# The notes that routing stores in a mail's history (app/routing/operations.py), by code.
ROUTING_NOTES = {
    "department_chosen": _l("The department %(chosen)s was chosen on the form instead of %(routed)s, which the rules gave."),
    "assignee_chosen": _l("The assignee was chosen on the form, not by the rules."),
    "assignee_unknown": _l("The assignee %(user)s named by the rules is unknown or inactive: the mail has no assignee."),
    "assignee_outside": _l("The assignee %(user)s named by the rules is not in %(department)s: the mail has no assignee."),
    "copy_user_unknown": _l("No copy to %(user)s, who is unknown or inactive."),
}


def _routing_note(note: Any) -> str:
    """Return a routing note of a mail's history in the user's language; a note of another form as stored."""
    if isinstance(note, dict) and note.get("code") in ROUTING_NOTES:
        values = {key: str(value) for key, value in note.items()}
        try:
            return str(ROUTING_NOTES[note["code"]]) % values
        except KeyError:
            log.warning("routing note %r lacks a value of its message", note)
    return str(note)


# The header's search box shows the query typed on this page, so its menu is never kept.
UNCACHED_MENU_ENDPOINTS = frozenset({"SearchView.index"})


def _menu() -> Markup:
    """Render the header of the page: Flask-AppBuilder's menu and the baskets with their counts.

    Both are the same on all of a user's pages except for the active basket,
    and rendering them (a permission check per menu entry, a count per
    basket, the unread notifications) costs more than many pages' own
    content. So app.mail.menu_counts keeps the rendered header as long as the
    basket counts, and clears it at the same writes. Its key contains
    everything the header reads: the user's context and grants, the
    language, the configuration version, the day and the active basket.
    """
    from app.configuration.operations import ConfigurationMissing, current_configuration
    from app.mail.operations import today_in_paris
    from app.organisation.context import current_user_context

    def render() -> Markup:
        return Markup(render_template("estafette/menu.html"))

    user = current_user_context()
    if user is None or request.endpoint in UNCACHED_MENU_ENDPOINTS:
        return render()
    try:
        configuration = current_configuration()
    except ConfigurationMissing:
        return render()
    active_basket = request.view_args.get("basket_id") if request.view_args else None
    if active_basket not in configuration.baskets:
        # Any text may stand in the URL: one entry per unknown basket id would fill the cache.
        active_basket = None
    parts = (
        "menu", configuration.version, today_in_paris(), str(get_locale() or ""), session.get("locale"),
        user.display_name, user.grants, active_basket,
    )
    return cached_for_user(user, parts, render)


def install(app: Flask) -> None:
    app.register_blueprint(
        Blueprint("estafette_assets", __name__, static_folder=str(STATIC_DIR), static_url_path="/assets")
    )
    _register_error_handlers(app)
    app.after_request(_add_security_headers)
    # First of the request hooks, before Flask-AppBuilder's hook reads the user: see note_request_start.
    app.before_request_funcs.setdefault(None, []).insert(0, note_request_start)
    app.context_processor(_template_context)
    app.jinja_env.filters["legal_date"] = _legal_date
    app.jinja_env.filters["local_datetime"] = _local_datetime
    app.jinja_env.filters["file_size"] = _file_size
    app.jinja_env.filters["basket_count"] = _basket_count
    app.jinja_env.filters["labelled"] = _labelled
    app.jinja_env.globals["estafette_menu"] = _menu
    app.jinja_env.globals["routing_rule_names"] = _routing_rule_names
    app.jinja_env.filters["routing_note"] = _routing_note
    app.jinja_env.globals["routing_check"] = _routing_check
    app.jinja_env.globals["routing_expected"] = _routing_expected

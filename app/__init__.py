"""Estafette: electronic mail register and signature book.

``create_app`` builds the application in named steps, each a small function
below, so that a reader sees the wiring order at a glance.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from flask import Flask
from jinja2 import FileSystemLoader

import config as settings
from app.extensions import appbuilder, csrf, db, migrate

log = logging.getLogger(__name__)

# Each area keeps its templates beside its code; Flask-AppBuilder's come after.
TEMPLATE_DIRS = [
    str(settings.BASE_DIR / "app" / area / "templates") for area in (
        "portal", "mail", "deadlines", "notifications", "scheduler", "actions", "routing", "absences", "search",
        "signature", "statistics", "documents", "organisation", "configuration",
    )
]


def create_app(config_name: str | None = None, overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.jinja_loader = FileSystemLoader(TEMPLATE_DIRS)
    load_settings(app, config_name, overrides)
    configure_logging(app)
    with app.app_context():
        init_database(app)
        init_security(app)
        register_views(app)
        register_commands(app)
        register_request_hooks(app)
    return app


def load_settings(app: Flask, config_name: str | None, overrides: dict[str, Any] | None) -> None:
    app.config.from_object(settings.select_config(config_name))
    app.config.update(overrides or {})
    if str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        # PostgreSQL's JIT compiled the basket queries for 300 ms to save a few:
        # their plans cost more than jit_above_cost but run in milliseconds.
        # psycopg prepares a statement run five times, and PostgreSQL may then
        # keep one generic plan for every user: the "À traiter" count of an
        # agent went from 11 ms to 148 ms at 1M mails. Each run is planned anew.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("options", "-c jit=off -c plan_cache_mode=force_custom_plan")
        options["connect_args"] = connect_args
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    # Flask-AppBuilder must not create tables: Alembic migrations own the schema.
    app.config["FAB_CREATE_DB"] = False
    settings.validate(app.config)


def configure_logging(app: Flask) -> None:
    level = getattr(logging, str(app.config["LOG_LEVEL"]).upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("estafette").setLevel(level)
    app.logger.setLevel(level)


def init_database(app: Flask) -> None:
    from app.core.db import configure_engine

    # Every model module must be imported before migrations or the mapper use them.
    importlib.import_module("app.models")
    from app.search.outbox import install_outbox_listener

    install_outbox_listener()
    from app.statistics.counters import install_statistics_listener

    install_statistics_listener()
    from app.documents.acknowledgement_state import install_acknowledgement_listener

    install_acknowledgement_listener()

    db.init_app(app)
    configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT"])
    migrate.init_app(app, db, directory=str(settings.BASE_DIR / "migrations"), render_as_batch=True)


def init_security(app: Flask) -> None:
    from app.core.security import check_password_length

    # Read by Flask-AppBuilder's forms that set a password (one's own, or another user's by an administrator).
    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_ENABLED", True)
    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_VALIDATOR", check_password_length)
    # Flask-AppBuilder first: its before_request sets g.user, which the error
    # page of a failed CSRF check needs.
    appbuilder.init_app(app, db.session)
    csrf.init_app(app)


def register_views(app: Flask) -> None:
    from app.absences.views import register as register_absence_views
    from app.actions.views import register as register_action_views
    from app.attachments.views import register as register_attachment_views
    from app.configuration.views import register as register_configuration_views
    from app.correspondents.views import register as register_correspondent_views
    from app.deadlines.views import register as register_deadline_views
    from app.documents.views import register as register_document_views
    from app.mail.views import register as register_mail_views
    from app.notifications.views import register as register_notification_views
    from app.organisation.views import register as register_organisation_views
    from app.portal.views import register as register_portal_views
    from app.routing.views import register as register_routing_views
    from app.scheduler.views import register as register_scheduler_views
    from app.search.views import register as register_search_views
    from app.signature.views import register as register_signature_views
    from app.statistics.views import register as register_statistics_views

    register_portal_views(app, appbuilder)
    register_mail_views(app, appbuilder)
    register_attachment_views(app, appbuilder)
    register_correspondent_views(app, appbuilder)
    register_deadline_views(app, appbuilder)
    register_notification_views(app, appbuilder)
    register_scheduler_views(app, appbuilder)
    register_action_views(app, appbuilder)
    register_routing_views(app, appbuilder)
    register_absence_views(app, appbuilder)
    register_search_views(app, appbuilder)
    register_statistics_views(app, appbuilder)
    register_signature_views(app, appbuilder)
    register_document_views(app, appbuilder)
    register_organisation_views(app, appbuilder)
    register_configuration_views(app, appbuilder)


def register_commands(app: Flask) -> None:
    from app.configuration.cli import schemas_cli
    from app.demo.cli import demo_cli
    from app.routing.cli import routing_cli
    from app.scheduler.cli import scheduler_cli
    from app.search.cli import search_cli
    from app.statistics.cli import statistics_cli

    app.cli.add_command(schemas_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(routing_cli)
    app.cli.add_command(scheduler_cli)
    app.cli.add_command(search_cli)
    app.cli.add_command(statistics_cli)


def register_request_hooks(app: Flask) -> None:
    from app.portal.hooks import install
    from app.scheduler.runner import install as install_scheduler

    install(app)
    install_scheduler(app)

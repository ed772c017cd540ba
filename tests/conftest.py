"""Fixtures shared by the integration and browser tests.

The database is chosen by ``ESTAFETTE_TEST_DATABASE_URL`` (SQLite by default,
PostgreSQL when the test command starts one).  The Alembic migrations rebuild
it once per test session, then the demo schemas and demo agents are applied.
Each test starts with an empty register.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
WORK_DIR = REPO / "var" / f"test-{os.getpid()}"

# Tables emptied between tests, children first.
REGISTER_TABLES = (
    "email_attachment",
    "email_message",
    "notification",
    "reminder",
    "missing_documents_request",
    "user_preference",
    "scheduler_job",
    "scheduler_lease",
    "signature_circuit_member",
    "signature_circuit",
    "signature_profile",
    "document_version",
    "document",
    "history_entry",
    "distribution_entry",
    "mail_read_mark",
    "absence",
    "attachment",
    "mail_correspondent",
    "search_outbox",
    "search_document",
    "search_extracted_text",
    "saved_search",
    "mail",
    "correspondent",
    "chrono_counter",
    "statistics_count",
    "mail_statistics",
    "statistics_state",
)


def _database_url() -> str:
    return os.environ.get("ESTAFETTE_TEST_DATABASE_URL") or f"sqlite:///{WORK_DIR / 'test.sqlite3'}"


def _reset_database(url: str) -> None:
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        return
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    engine.dispose()


@pytest.fixture(scope="session")
def app() -> Iterator[Any]:
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    WORK_DIR.mkdir(parents=True)
    url = _database_url()
    _reset_database(url)

    from flask_migrate import upgrade

    from app import create_app
    from app.configuration.operations import apply_directory, forget_cached_configuration
    from app.demo.cli import create_demo_users

    application = create_app(
        "test",
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "STORAGE_ROOT": str(WORK_DIR / "storage"),
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 60, "max_overflow": 20} if url.startswith("postgresql") else {},
        },
    )
    with application.app_context():
        upgrade(directory=str(REPO / "migrations"))
        forget_cached_configuration()
        apply_directory(REPO / "schemas")
        application.appbuilder.add_permissions(update_perms=True)
        create_demo_users()
    yield application
    with application.app_context():
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    shutil.rmtree(WORK_DIR, ignore_errors=True)


@pytest.fixture()
def app_context(app: Any) -> Iterator[Any]:
    with app.app_context():
        yield app


@pytest.fixture(autouse=True)
def empty_register(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty the register after each test that used the application."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        from app.extensions import db

        db.session.rollback()
        for table in REGISTER_TABLES:
            db.session.execute(text(f"DELETE FROM {table}"))
        # The statistics counters of an empty register are complete, whatever an earlier test did to them.
        db.session.execute(text("INSERT INTO statistics_state (id, fingerprint, built_at) VALUES (1, '{}', CURRENT_TIMESTAMP)"))
        db.session.commit()
        db.session.remove()


def user_context(username: str) -> Any:
    """Return the UserContext of a demo agent; call inside an app context."""
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy import select

    from app.extensions import db
    from app.organisation.context import build_user_context

    user = db.session.execute(select(User).where(User.username == username)).scalar_one()
    return build_user_context(user)


def confidential_for_sejour(subject: str = "Signalement confidentiel") -> int:
    """Register a confidential complaint assigned to ``sejour`` in DMI-SSE-BPT and return its id."""
    from datetime import timedelta

    from app.correspondents.operations import CorrespondentInput
    from app.mail.operations import Registration, register_mail, today_in_paris

    mail = register_mail(
        user_context("courrier"),
        Registration(
            mail_type="public_complaint", subject=subject,
            arrival_date=today_in_paris() - timedelta(days=1), handling_department="DMI-SSE-BPT",
            confidential=True, assignee_id=user_context("sejour").user_id,
            correspondent=CorrespondentInput(last_name="Martin", first_name="Léa", confirm_new=True),
        ),
    )
    return mail.id


CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_PATTERN.search(html) or re.search(r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: Any, username: str, password: str = "estafette-demo") -> None:
    page = client.get("/login/")
    response = client.post(
        "/login/", data={"username": username, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True))}
    )
    assert response.status_code == 302, f"login of {username} failed with {response.status_code}"


@pytest.fixture()
def client_as(app: Any) -> Any:
    """Return a function giving a test client logged in as the given demo agent."""

    def make(username: str) -> Any:
        client = app.test_client()
        login(client, username)
        return client

    return make


@pytest.fixture()
def restore_templates(app_context: Any) -> Iterator[None]:
    """Remove the documents and the template files uploaded by the test, so that the schema files are used again."""
    from sqlalchemy import delete

    from app.documents.models import Document, DocumentVersion, TemplateFile
    from app.extensions import db

    yield
    db.session.rollback()
    db.session.execute(delete(DocumentVersion))
    db.session.execute(delete(Document))
    db.session.execute(delete(TemplateFile).where(TemplateFile.source == "upload"))
    db.session.commit()

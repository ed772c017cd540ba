"""Settings of Estafette, one class per environment.

Each setting has a default for the embedded deployment (SQLite, built-in search,
in-process scheduler, e-mail written to a folder) and can be overridden by an
environment variable of the same name prefixed with ``ESTAFETTE_``.  The
selected class is validated by :func:`validate` when the application starts.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("ESTAFETTE_VAR_DIR", BASE_DIR / "var"))

# Secrets shorter than this are rejected in production.
MIN_SECRET_KEY_LENGTH = 32
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"
SCHEDULER_MODES = ("in-process", "external", "off")
MAIL_BACKENDS = ("folder", "smtp")
SMTP_SECURITY_MODES = ("none", "starttls", "ssl")
SEARCH_BACKENDS = ("embedded", "opensearch", "elasticsearch")


def _listening_url(bind: str) -> str:
    """Return the URL of gunicorn's ``bind`` address, with this machine's name for an address of every interface."""
    if bind.startswith(("unix:", "fd://")):
        # A socket behind a reverse proxy: the proxy's address is unknown here.
        return "http://127.0.0.1:5000"
    host, _, port = bind.rpartition(":")
    if not host or bind.endswith("]"):
        # No port: gunicorn listens on 8000.
        host, port = bind, "8000"
    if host in ("0.0.0.0", "[::]"):
        host = socket.gethostname()
    return f"http://{host}:{port}"


def _env(name: str, default: Any) -> Any:
    """Return ``ESTAFETTE_<name>`` converted to the type of ``default``."""
    raw = os.environ.get(f"ESTAFETTE_{name}")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    return raw


class BaseConfig:
    APP_NAME = "Estafette"
    APP_ICON = ""
    APP_THEME = ""

    SECRET_KEY = _env("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'estafette.sqlite3'}")
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    # Seconds a SQLite writer waits for the lock before failing.
    SQLITE_BUSY_TIMEOUT = _env("SQLITE_BUSY_TIMEOUT", 30)

    # Authentication through Flask-AppBuilder's user database.
    AUTH_TYPE = 1  # flask_appbuilder.const.AUTH_DB
    AUTH_ROLE_ADMIN = "administrator"
    AUTH_ROLE_PUBLIC = "public"
    FAB_ADD_SECURITY_VIEWS = True
    FAB_SECURITY_MANAGER_CLASS = "app.core.security.EstafetteSecurityManager"
    # Permission tables are synchronised by `flask schemas apply`, not at each start.
    FAB_UPDATE_PERMS = False
    FAB_API_SWAGGER_UI = False
    FAB_BASE_TEMPLATE = "estafette/base.html"
    FAB_INDEX_VIEW = "app.portal.views.HomeView"

    # Languages: French first, English second.
    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "translations")
    LANGUAGES = {
        "fr": {"flag": "fr", "name": "Français"},
        "en": {"flag": "gb", "name": "English"},
    }
    DISPLAY_TIMEZONE = "Europe/Paris"

    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env("SESSION_COOKIE_SECURE", False)

    SCHEMAS_DIR = _env("SCHEMAS_DIR", str(BASE_DIR / "schemas"))
    STORAGE_ROOT = _env("STORAGE_ROOT", str(VAR_DIR / "storage"))
    # Upload limits: one file and one whole request, in bytes.
    MAX_UPLOAD_BYTES = _env("MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
    MAX_CONTENT_LENGTH = _env("MAX_CONTENT_LENGTH", 200 * 1024 * 1024)
    MAX_ATTACHMENTS_PER_MAIL = _env("MAX_ATTACHMENTS_PER_MAIL", 20)
    # Stored files no row refers to (a registration whose transaction failed after storing its
    # files) are deleted each night at STORAGE_SWEEP_HOUR (Europe/Paris), once this many hours old.
    STORAGE_SWEEP_HOUR = _env("STORAGE_SWEEP_HOUR", 3)
    STORAGE_SWEEP_GRACE_HOURS = _env("STORAGE_SWEEP_GRACE_HOURS", 48)
    # Seconds the sweep works in one scheduler pass before it lets the other jobs run; it goes on at the next.
    STORAGE_SWEEP_SECONDS = _env("STORAGE_SWEEP_SECONDS", 20)

    BASKET_PAGE_SIZE = _env("BASKET_PAGE_SIZE", 25)
    # Seconds a worker keeps the applied configuration before checking for a newer version.
    SCHEMA_REFRESH_SECONDS = _env("SCHEMA_REFRESH_SECONDS", 5)

    LOG_LEVEL = _env("LOG_LEVEL", "INFO")

    # Scheduled work: "in-process" runs the scheduler in each web process, which
    # compete for a database lease so that one runs the jobs; "external" leaves it
    # to `flask scheduler run`; "off" runs nothing.
    SCHEDULER_MODE = _env("SCHEDULER_MODE", "in-process")
    # Seconds between two passes of the scheduler over due reminders and e-mail.
    SCHEDULER_INTERVAL_SECONDS = _env("SCHEDULER_INTERVAL_SECONDS", 60)
    # Seconds a process holds the scheduler lease without renewing it.
    SCHEDULER_LEASE_SECONDS = _env("SCHEDULER_LEASE_SECONDS", 300)
    # Hour (Europe/Paris) of reminders and of the daily digest.
    REMINDER_HOUR = _env("REMINDER_HOUR", 9)
    DIGEST_HOUR = _env("DIGEST_HOUR", 7)

    # E-mail: "folder" writes .eml files to MAIL_OUTBOX_DIR, "smtp" sends through SMTP_HOST.
    MAIL_BACKEND = _env("MAIL_BACKEND", "folder")
    MAIL_OUTBOX_DIR = _env("MAIL_OUTBOX_DIR", str(VAR_DIR / "mail-outbox"))
    MAIL_SENDER = _env("MAIL_SENDER", "Estafette <estafette@localhost>")
    SMTP_HOST = _env("SMTP_HOST", "127.0.0.1")
    SMTP_PORT = _env("SMTP_PORT", 25)
    # "none", "starttls" or "ssl" (implicit TLS, usually port 465).
    SMTP_SECURITY = _env("SMTP_SECURITY", "none")
    SMTP_USERNAME = _env("SMTP_USERNAME", "")
    SMTP_PASSWORD = _env("SMTP_PASSWORD", "")
    SMTP_TIMEOUT_SECONDS = _env("SMTP_TIMEOUT_SECONDS", 30)
    # Address of the portal as users reach it, for the links in e-mail: by default the address gunicorn listens on.
    PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", _listening_url(os.environ.get("ESTAFETTE_BIND") or "127.0.0.1:5000"))

    # Search: "embedded" (full-text search inside the database), "opensearch" or
    # "elasticsearch" (SEARCH_URL, e.g. http://127.0.0.1:9200, index SEARCH_INDEX).
    SEARCH_BACKEND = _env("SEARCH_BACKEND", "embedded")
    SEARCH_URL = _env("SEARCH_URL", "")
    SEARCH_INDEX = _env("SEARCH_INDEX", "estafette-mail")
    SEARCH_TIMEOUT_SECONDS = _env("SEARCH_TIMEOUT_SECONDS", 10)
    SEARCH_PAGE_SIZE = _env("SEARCH_PAGE_SIZE", 20)
    # Tesseract language of scanned letters; "" turns OCR off.
    SEARCH_OCR_LANGUAGE = _env("SEARCH_OCR_LANGUAGE", "fra")

    # PAdES signature of the documents signed in the signature book: path of a PKCS#12 file
    # (certificate and private key) and its password, both from the environment. Empty path:
    # signing stamps the visible signature block only.
    SIGNATURE_PKCS12 = _env("SIGNATURE_PKCS12", "")
    SIGNATURE_PKCS12_PASSWORD = _env("SIGNATURE_PKCS12_PASSWORD", "")


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"


class TestConfig(BaseConfig):
    ENV_NAME = "test"
    TESTING = True
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "ESTAFETTE_TEST_DATABASE_URL", f"sqlite:///{VAR_DIR / 'test.sqlite3'}"
    )
    STORAGE_ROOT = str(VAR_DIR / "test-storage")
    SCHEMA_REFRESH_SECONDS = 0
    LOG_LEVEL = "WARNING"
    # Tests start a scheduler themselves when they need one.
    SCHEDULER_MODE = "off"
    MAIL_OUTBOX_DIR = str(VAR_DIR / "test-mail-outbox")


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = _env("SESSION_COOKIE_SECURE", True)


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}


class ConfigurationError(RuntimeError):
    """A setting is missing or unsafe; the application refuses to start."""


def select_config(name: str | None = None) -> type[BaseConfig]:
    """Return the settings class named by ``name`` or by ``ESTAFETTE_ENV``."""
    name = name or os.environ.get("ESTAFETTE_ENV", "development")
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown ESTAFETTE_ENV {name!r}: use one of {', '.join(CONFIGS)}."
        ) from None


def validate(settings: dict[str, Any]) -> None:
    """Raise ConfigurationError when the settings are unsafe or inconsistent."""
    env_name = settings.get("ENV_NAME", "development")
    secret = settings.get("SECRET_KEY") or ""
    if env_name == "production":
        if secret == DEVELOPMENT_SECRET_KEY or len(secret) < MIN_SECRET_KEY_LENGTH:
            raise ConfigurationError(
                "ESTAFETTE_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters in production, for example the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
    if int(settings.get("MAX_UPLOAD_BYTES", 0)) <= 0:
        raise ConfigurationError("ESTAFETTE_MAX_UPLOAD_BYTES must be a positive number of bytes.")
    if int(settings.get("MAX_ATTACHMENTS_PER_MAIL", 1)) <= 0:
        raise ConfigurationError("ESTAFETTE_MAX_ATTACHMENTS_PER_MAIL must be a positive number of files.")
    if int(settings.get("STORAGE_SWEEP_GRACE_HOURS", 48)) < 1:
        raise ConfigurationError("ESTAFETTE_STORAGE_SWEEP_GRACE_HOURS must be at least 1 hour.")
    for name in ("REMINDER_HOUR", "DIGEST_HOUR", "STORAGE_SWEEP_HOUR"):
        if not 0 <= int(settings.get(name, 0)) <= 23:
            raise ConfigurationError(f"ESTAFETTE_{name} must be an hour from 0 to 23, not {settings[name]}.")
    if int(settings.get("STORAGE_SWEEP_SECONDS", 20)) < 1:
        raise ConfigurationError("ESTAFETTE_STORAGE_SWEEP_SECONDS must be at least 1 second.")
    if settings.get("SCHEDULER_MODE", "off") not in SCHEDULER_MODES:
        raise ConfigurationError(
            f"ESTAFETTE_SCHEDULER_MODE {settings['SCHEDULER_MODE']!r} is invalid: use one of {', '.join(SCHEDULER_MODES)}."
        )
    if settings.get("MAIL_BACKEND", "folder") not in MAIL_BACKENDS:
        raise ConfigurationError(
            f"ESTAFETTE_MAIL_BACKEND {settings['MAIL_BACKEND']!r} is invalid: use one of {', '.join(MAIL_BACKENDS)}."
        )
    if settings.get("SMTP_SECURITY", "none") not in SMTP_SECURITY_MODES:
        raise ConfigurationError(
            f"ESTAFETTE_SMTP_SECURITY {settings['SMTP_SECURITY']!r} is invalid: use one of {', '.join(SMTP_SECURITY_MODES)}."
        )
    if settings.get("SEARCH_BACKEND", "embedded") not in SEARCH_BACKENDS:
        raise ConfigurationError(
            f"ESTAFETTE_SEARCH_BACKEND {settings['SEARCH_BACKEND']!r} is invalid: use one of {', '.join(SEARCH_BACKENDS)}."
        )
    if settings.get("SEARCH_BACKEND", "embedded") != "embedded" and not settings.get("SEARCH_URL"):
        raise ConfigurationError(
            f"ESTAFETTE_SEARCH_URL is missing: the {settings['SEARCH_BACKEND']} search backend needs the cluster's URL."
        )
    if settings.get("SIGNATURE_PKCS12") and not Path(settings["SIGNATURE_PKCS12"]).is_file():
        raise ConfigurationError(
            f"ESTAFETTE_SIGNATURE_PKCS12 {settings['SIGNATURE_PKCS12']!r} is not a file: give the path of the "
            "PKCS#12 certificate, or leave it empty to sign with a visible block only."
        )
    if not Path(settings["SCHEMAS_DIR"]).is_dir():
        raise ConfigurationError(
            f"ESTAFETTE_SCHEMAS_DIR {settings['SCHEMAS_DIR']!r} is not a directory."
        )

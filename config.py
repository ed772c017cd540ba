"""Settings of Estafette, one class per environment.

Each setting has a default for the embedded deployment (SQLite, built-in search,
in-process scheduler, e-mail written to a folder) and can be overridden by an
environment variable of the same name prefixed with ``ESTAFETTE_``.  The
selected class is validated by :func:`validate` when the application starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("ESTAFETTE_VAR_DIR", BASE_DIR / "var"))

# Secrets shorter than this are rejected in production.
MIN_SECRET_KEY_LENGTH = 32
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"


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
    MAX_ATTACHMENTS_PER_MAIL = 20

    BASKET_PAGE_SIZE = _env("BASKET_PAGE_SIZE", 25)
    # Seconds a worker keeps the applied configuration before checking for a newer version.
    SCHEMA_REFRESH_SECONDS = _env("SCHEMA_REFRESH_SECONDS", 5)

    LOG_LEVEL = _env("LOG_LEVEL", "INFO")


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
    if not Path(settings["SCHEMAS_DIR"]).is_dir():
        raise ConfigurationError(
            f"ESTAFETTE_SCHEMAS_DIR {settings['SCHEMAS_DIR']!r} is not a directory."
        )

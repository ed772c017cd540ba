"""Settings validation at start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import config


def _settings(**changes):
    values = {key: getattr(config.ProductionConfig, key) for key in dir(config.ProductionConfig) if key.isupper()}
    values.update(changes)
    return values


def test_production_refuses_default_secret():
    with pytest.raises(config.ConfigurationError, match="ESTAFETTE_SECRET_KEY"):
        config.validate(_settings(SECRET_KEY=config.DEVELOPMENT_SECRET_KEY))


def test_production_refuses_short_secret():
    with pytest.raises(config.ConfigurationError):
        config.validate(_settings(SECRET_KEY="x" * 31))


def test_production_accepts_long_secret():
    config.validate(_settings(SECRET_KEY="k" * 48))


def test_development_allows_default_secret():
    values = {key: getattr(config.DevelopmentConfig, key) for key in dir(config.DevelopmentConfig) if key.isupper()}
    config.validate(values)


def test_unknown_environment_named():
    with pytest.raises(config.ConfigurationError, match="staging"):
        config.select_config("staging")


def test_missing_schemas_dir_refused(tmp_path):
    with pytest.raises(config.ConfigurationError, match="SCHEMAS_DIR"):
        config.validate(_settings(SECRET_KEY="k" * 48, SCHEMAS_DIR=str(tmp_path / "none")))


@pytest.mark.parametrize(("name", "value"), [("STORAGE_SWEEP_HOUR", 24), ("DIGEST_HOUR", -1), ("REMINDER_HOUR", 25)])
def test_hour_outside_the_day_refused(name, value):
    with pytest.raises(config.ConfigurationError, match=f"ESTAFETTE_{name} must be an hour from 0 to 23"):
        config.validate(_settings(SECRET_KEY="k" * 48, **{name: value}))


def test_file_limit_below_one_refused():
    with pytest.raises(config.ConfigurationError, match="ESTAFETTE_MAX_ATTACHMENTS_PER_MAIL"):
        config.validate(_settings(SECRET_KEY="k" * 48, MAX_ATTACHMENTS_PER_MAIL=0))


@pytest.mark.parametrize(("environment", "expected"), [
    ({"ESTAFETTE_BIND": "127.0.0.1:8131"}, "http://127.0.0.1:8131"),
    ({}, "http://127.0.0.1:5000"),
    ({"ESTAFETTE_BIND": "0.0.0.0:8000"}, f"http://{socket.gethostname()}:8000"),
    ({"ESTAFETTE_BIND": "unix:/run/estafette.sock"}, "http://127.0.0.1:5000"),
    ({"ESTAFETTE_BIND": "0.0.0.0:8000", "ESTAFETTE_PUBLIC_BASE_URL": "https://courrier.pref.example"},
     "https://courrier.pref.example"),
])
def test_public_base_url_follows_bind(environment, expected):
    env = {key: value for key, value in os.environ.items() if key not in ("ESTAFETTE_BIND", "ESTAFETTE_PUBLIC_BASE_URL")}
    code = "import config; print(config.select_config('development').PUBLIC_BASE_URL)"
    output = subprocess.run([sys.executable, "-c", code], env={**env, **environment}, cwd=Path(config.__file__).parent,
                            capture_output=True, text=True, check=True).stdout

    assert output.strip() == expected

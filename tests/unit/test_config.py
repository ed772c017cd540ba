"""Settings validation at start."""

from __future__ import annotations

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

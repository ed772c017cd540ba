# Estafette — the two commands of the README, and the steps they are made of.
#   make demo   set up this machine and serve the demo prefecture on http://127.0.0.1:5000
#   make test   set up this machine and run the whole test suite (SQLite, then PostgreSQL)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := run.py
export PYBABEL := $(BIN)/pybabel
DEMO_MAILS ?= 300
PG_URL_FILE := var/postgres-url

.PHONY: demo serve setup venv translations database demo-data test test-sqlite test-postgresql system-packages lint bench clean

demo: setup database demo-data serve

setup: venv translations

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

translations: venv
	bash scripts/i18n.sh compile

database: venv
	mkdir -p var
	$(BIN)/flask db upgrade
	$(BIN)/flask schemas apply

demo-data: venv
	@if [ "$$($(BIN)/python -c 'from run import app; from app.extensions import db; from sqlalchemy import text; ctx = app.app_context(); ctx.push(); print(db.session.execute(text("select count(*) from mail")).scalar())' 2>/dev/null)" = "0" ]; then \
		$(BIN)/flask demo load --mails $(DEMO_MAILS); \
	else \
		$(BIN)/flask demo users; \
	fi

serve: venv
	@echo "Estafette serves the demo prefecture on http://$${ESTAFETTE_BIND:-127.0.0.1:5000} (Ctrl+C to stop)."
	$(BIN)/gunicorn -c gunicorn.conf.py run:app

system-packages:
	bash scripts/ensure-system-packages.sh --postgres --browser --documents --search

test: setup system-packages
	bash scripts/i18n.sh check
	$(BIN)/ruff check app tests bench config.py run.py
	@# The search tests also run against a real OpenSearch node, stopped whatever the outcome.
	export ESTAFETTE_TEST_OPENSEARCH_URL="$$(bash scripts/opensearch-node.sh start | tail -1)" \
		&& trap 'bash scripts/opensearch-node.sh stop' EXIT \
		&& $(MAKE) --no-print-directory test-sqlite \
		&& $(MAKE) --no-print-directory test-postgresql

test-sqlite: venv
	ESTAFETTE_TEST_DATABASE_URL= $(BIN)/python -m pytest -q tests

test-postgresql: venv
	ESTAFETTE_TEST_DATABASE_URL="$$(bash scripts/ensure-postgres.sh | tail -1)" \
		$(BIN)/python -m pytest -q tests/integration tests/browser

lint: venv
	$(BIN)/ruff check app tests bench config.py run.py
	$(BIN)/mypy

bench: venv
	$(BIN)/python -m bench.run --mails 100000 --database sqlite

clean:
	rm -rf $(VENV) var

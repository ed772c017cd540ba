"""Gunicorn settings for Estafette (`gunicorn -c gunicorn.conf.py run:app`).

Each setting can be overridden by an environment variable.  On SQLite only one
worker process is allowed, because writers in several processes would queue on
the file lock.  Threads serve requests in parallel instead.  Use PostgreSQL to
run several workers.
"""

import os

bind = os.environ.get("ESTAFETTE_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("ESTAFETTE_WORKERS", "1"))
threads = int(os.environ.get("ESTAFETTE_THREADS", "4"))
timeout = int(os.environ.get("ESTAFETTE_TIMEOUT", "120"))
accesslog = "-"


def on_starting(server):
    database_url = os.environ.get("ESTAFETTE_DATABASE_URL", "sqlite")
    if database_url.startswith("sqlite") and server.cfg.workers > 1:
        raise SystemExit(
            f"Estafette on SQLite runs with one worker process, not {server.cfg.workers}: "
            "set ESTAFETTE_WORKERS=1 and raise ESTAFETTE_THREADS, or use PostgreSQL."
        )


def post_worker_init(worker):
    # Start the in-process scheduler when the worker boots, not at its first request, so that
    # reminders that fell due while the server was stopped go out without waiting for a visitor.
    from app.scheduler.runner import start_in_process

    start_in_process(worker.wsgi)

"""`flask scheduler run` (a dedicated scheduler process) and `flask scheduler status`."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from app.scheduler.runner import SchedulerRunner, scheduler_status

scheduler_cli = AppGroup("scheduler", help="Run scheduled jobs (reminders, e-mail, digests) and show their state.")


@scheduler_cli.command("run")
@click.option("--passes", type=int, default=None, help="Run this many passes, one every interval, then exit.")
@click.option("--interval", type=float, default=None, help="Seconds between passes (default: SCHEDULER_INTERVAL_SECONDS).")
def run_command(passes: int | None, interval: float | None) -> None:
    """Run the scheduler in this process until SIGTERM or Ctrl+C, or for --passes passes.

    Several such processes may run: only the holder of the database lease runs jobs.
    """
    app: Any = current_app._get_current_object()  # type: ignore[attr-defined]
    runner = SchedulerRunner(app, interval_seconds=interval)
    if passes is not None:
        for number in range(passes):
            if number:
                time.sleep(runner.interval_seconds)
            click.echo(json.dumps(runner.run_pass().as_dict()))
        return

    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_args: stop.set())
    runner.start()
    click.echo(f"scheduler {runner.holder} running, a pass every {runner.interval_seconds} s (Ctrl+C stops it)")
    stop.wait()
    runner.shutdown()


@scheduler_cli.command("status")
def status_command() -> None:
    """Print the lease holder, each job's last and next run, and the queues."""
    status = scheduler_status(current_app)
    if status.lease is None:
        click.echo("lease: never taken")
    else:
        state = "active" if status.lease_active else "expired"
        click.echo(f"lease: {status.lease.holder} ({state} until {status.lease.expires_at.isoformat()})")
    for job in status.jobs:
        click.echo(
            f"job {job.id}: next {job.next_run_at.isoformat() if job.next_run_at else '-'}, "
            f"last {job.last_started_at.isoformat() if job.last_started_at else '-'} {job.last_outcome or ''}, "
            f"runs {job.total_runs}, failures {job.total_failures} ({job.consecutive_failures} in a row), "
            f"late runs {job.late_runs}"
        )
        if job.last_error:
            click.echo(f"  last error: {job.last_error}")
    click.echo(f"reminders pending: {status.pending_reminders}, due now: {status.due_reminders}")
    click.echo(f"e-mail pending: {status.pending_email}, failed: {status.failed_email}")

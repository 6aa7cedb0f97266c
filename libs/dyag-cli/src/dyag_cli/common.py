"""What every dyag command shares: the consoles, errors, job progress bars, waiting through a restart."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dyag_cli.client import CliError, GatewayClient, Waiter
from dyag_cli.stack import StackError

console = Console()
err = Console(stderr=True)

SAMPLE_CATALOG = Path("examples/test-mygusi/applicationsIA_mini_normalized.json")
DEFAULT_CATALOG_NAME = "applications_ia"


def sample_catalog() -> Path:
    """The sample catalog of the checkout dyag runs from (or of the current folder)."""
    for root in (Path.cwd(), *Path(__file__).resolve().parents):
        if (root / SAMPLE_CATALOG).is_file():
            return root / SAMPLE_CATALOG
    fail(f"no sample catalog found ({SAMPLE_CATALOG}); pass a catalog file")
    raise AssertionError


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")  # "[code, HTTP 422]" is text, not markup
    raise typer.Exit(code)


def run_or_fail(action):
    try:
        return action()
    except (CliError, StackError) as exc:
        fail(str(exc))


def follow_waiter(hint: str) -> Waiter:
    """How a command that follows a job or a pipeline lives through a restart of the gateway or of a service: one
    notice line, retries with backoff for DYAG_FOLLOW_WAIT_S (5 minutes), then `hint` with the error."""
    return Waiter(
        lambda notice: console.print(f"[yellow]⟳[/] {escape(notice)}"),
        limit_s=float(os.environ.get("DYAG_FOLLOW_WAIT_S") or 300),
        hint=hint,
    )


def stopped_following(what: str, watch: str, cancel: str) -> None:
    """Ctrl-C while following: the work goes on, and the user is told how to find it again."""
    fail(f"stopped following; the {what} goes on: {watch} (or {cancel})", 130)


def follow_job(client: GatewayClient, job_id: str, label: str | None = None) -> dict:
    """A live progress bar fed by the gateway's server-sent events; returns the final job."""
    job: dict = {}
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label or job_id, total=1.0, step="")
        try:
            for job in client.watch_job(job_id, follow_waiter(f"the job goes on: dyag jobs watch {job_id}")):
                p = job.get("progress", {})
                progress.update(task, completed=p.get("fraction", 0.0), step=p.get("step", ""))
        except CliError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            stopped_following("job", f"dyag jobs watch {job_id}", f"dyag jobs cancel {job_id}")
    return job

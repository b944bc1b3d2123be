"""Rich progress bars and status lines on stderr (quiet when not a terminal)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def _quiet() -> bool:
    return bool(os.environ.get("W2S_QUIET"))


def progress() -> Progress:
    """A progress display for long loops (feature extraction, training)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=_quiet() or not console.is_terminal,
    )


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """Show a spinner with `message` while the block runs, then a done line."""
    if _quiet():
        yield
        return
    if console.is_terminal:
        with console.status(message):
            yield
    else:
        yield
    console.print(f"[green]done[/green] {message}")


def warn(message: str) -> None:
    """One warning line on stderr (shown even when quiet: warnings are never noise)."""
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """One informational line on stderr (silent under W2S_QUIET)."""
    if not _quiet():
        console.print(message, highlight=False, soft_wrap=True)

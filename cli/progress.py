"""Progress bars for people watching a terminal; nothing at all when stderr is a file or a pipe."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click


def shown() -> bool:
    """A bar only where a person watches: stderr is a terminal (tests, pipes and logs get no bar, not even a label)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stderr
        return False


@contextmanager
def bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`: the bar moves by n of `total` steps; a no-op where no one watches."""
    if not shown() or total <= 0:
        yield lambda _n: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as progress:
        yield progress.update


@contextmanager
def counter(label: str) -> Iterator[Callable[[int, int], None]]:
    """Yield `report(done, total)` for work that learns its total as it goes (a sweep's units)."""
    if not shown():
        yield lambda _done, _total: None
        return
    state: dict[str, int] = {"shown": 0}

    def report(done: int, total: int) -> None:
        state["shown"] = done
        click.echo(f"\r{label} {done}/{total}", nl=False, err=True)

    try:
        yield report
    finally:
        if state["shown"]:
            click.echo("", err=True)

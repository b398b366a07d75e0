"""Progress bars for people watching a terminal; nothing at all when stderr is a file or a pipe."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
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


@contextmanager
def tally(label: str, every: int = 1) -> Iterator[Callable[[], None]]:
    """Yield `tick()` for work whose total is not known ahead (rows streamed from a file, pages written): the count
    is shown every `every` ticks and once at the end; a no-op where no one watches."""
    if not shown():
        yield lambda: None
        return
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] % every == 0:
            click.echo(f"\r{label} {count[0]}", nl=False, err=True)

    try:
        yield tick
    finally:
        if count[0]:
            click.echo(f"\r{label} {count[0]}", err=True)


def counted(rows: Iterable[tuple[int, list[str]]], label: str) -> Iterator[tuple[int, list[str]]]:
    """A file's rows as they stream into an import, counted on the terminal (every 1,000 rows)."""
    with tally(label, every=1000) as tick:
        for row in rows:
            tick()
            yield row

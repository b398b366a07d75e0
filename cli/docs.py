"""docs/cli.md, generated from the `campaign` command itself (every command and option), and the tables of
docs/formats.md from the column tables, so neither can drift (`python -m cli.docs --write` renews them; a test
compares)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from cli.main import cli
from states import columns
from states.labels import KIND_LABELS, ROLE_LABELS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
FORMATS = Path(__file__).resolve().parents[1] / "docs" / "formats.md"
WIDTH = 110


def commands(group: click.Group, ctx: click.Context) -> Iterator[tuple[click.Context, click.Command]]:
    """Every command under `group`, depth first in name order, each with the context its help is written in."""
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx, terminal_width=WIDTH, max_content_width=WIDTH)
        yield sub, command
        if isinstance(command, click.Group):
            yield from commands(command, sub)


def render() -> str:
    settings = {**cli.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    root = click.Context(cli, info_name="campaign", **settings)
    found = list(commands(cli, root))
    out = [
        "# The `campaign` command",
        "",
        "Generated from the command line by `python -m cli.docs --write`: every command, its arguments and options",
        "(a test fails when this page and the command differ). The files the imports read — their columns in",
        "English and Chinese, every `kind`, the dates and encodings — are in `docs/formats.md`. Exit status: 0 done,",
        "1 refused by the rules, 2 bad input, with one line on stderr and nothing changed.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for ctx, command in found:
        path = ctx.command_path
        out.append(f"| [`{path}`](#{_anchor(path)}) | {command.get_short_help_str(limit=100)} |")
    out += ["", "```text", root.get_help(), "```", ""]
    for ctx, _command in found:
        out += [f"## {ctx.command_path}", "", "```text", ctx.get_help(), "```", ""]
    return "\n".join(out)


def _columns_table(table: tuple[columns.Column, ...]) -> list[str]:
    out = ["| column | 中文表头 (also accepted) | required | holds |", "|---|---|---|---|"]
    for c in table:
        also = f" ({'、'.join(c.aliases)})" if c.aliases else ""
        out.append(f"| `{c.name}` | {c.zh}{also} | {'yes' if c.required else 'no'} | {c.doc} |")
    return out


def format_tables() -> dict[str, list[str]]:
    """The generated parts of docs/formats.md, by marker."""
    roles = ["| role | 中文 | who |", "|---|---|---|"]
    roles += [f"| `{r}` | {ROLE_LABELS[r]['zh-CN']} | {ROLE_LABELS[r]['en']} |" for r in ROLE_LABELS]
    kinds = ["| kind | 中文 | whose | value | example row |", "|---|---|---|---|---|"]
    for kind, doc in columns.KIND_DOCS.items():
        kinds.append(f"| `{kind}` | {KIND_LABELS[kind]['zh-CN']} | {doc.subject} | {doc.value} | `{doc.example}` |")
    return {
        "roster": _columns_table(columns.ROSTER),
        "roles": roles,
        "records": _columns_table(columns.RECORDS),
        "kinds": kinds,
        "ballot": _columns_table(columns.BALLOT),
    }


def render_formats(text: str) -> str:
    """docs/formats.md's text with every generated table renewed between its markers."""
    for name, lines in format_tables().items():
        start, end = f"<!-- generated:{name} -->", f"<!-- end:{name} -->"
        before, rest = text.split(start, 1)
        _old, after = rest.split(end, 1)
        text = before + start + "\n" + "\n".join(lines) + "\n" + end + after
    return text


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def pages() -> dict[Path, str]:
    """What docs/cli.md and docs/formats.md should hold."""
    return {PAGE: render(), FORMATS: render_formats(FORMATS.read_text(encoding="utf-8"))}


def main(argv: list[str]) -> int:
    """`--write` renews the pages; `--check` exits 1 when one differs; otherwise docs/cli.md goes to stdout."""
    if "--write" in argv or "--check" in argv:
        stale = [path for path, text in pages().items() if path.read_text(encoding="utf-8") != text]
        for path in stale:
            if "--write" in argv:
                path.write_text(pages()[path], encoding="utf-8")
                print(path)
            else:
                print(f"{path} differs from the code: run python -m cli.docs --write", file=sys.stderr)
        return 1 if stale and "--check" in argv else 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

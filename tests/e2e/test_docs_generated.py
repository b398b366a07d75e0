"""docs/cli.md is the command line's own help and docs/formats.md's tables are the column tables: neither drifts;
and every example row docs/formats.md shows is one the importer takes."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cli.docs import FORMATS, PAGE, commands, pages
from cli.main import cli
from readers import read_table
from states import columns
from states.labels import KIND_LABELS
from states.models import Evidence
from states.records import import_records
from tests.fixtures import at, load_sample


def test_the_docs_are_what_the_code_generates() -> None:
    for path, text in pages().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} drifted: run python -m cli.docs --write"


def test_every_command_has_its_section() -> None:
    text = PAGE.read_text(encoding="utf-8")
    root = click.Context(cli, info_name="campaign")
    found = [ctx.command_path for ctx, _ in commands(cli, root)]
    assert {"campaign roster import", "campaign record import", "campaign ballot import", "campaign template"} <= set(found)
    for path in found:
        assert f"\n## {path}\n" in text


def test_formats_documents_every_column_and_kind_in_both_languages() -> None:
    text = FORMATS.read_text(encoding="utf-8")
    for table in columns.FILES.values():
        for column in table:
            assert f"| `{column.name}` | {column.zh}" in text
    for kind, words in KIND_LABELS.items():
        assert f"| `{kind}` | {words['zh-CN']} |" in text


def test_the_documented_example_rows_import(sqlite_engine: Engine, tmp_path: Path) -> None:
    load_sample(sqlite_engine, records=False)
    path = tmp_path / "examples.csv"
    rows = [doc.example for doc in columns.KIND_DOCS.values()]
    path.write_text("member_id,branch_id,kind,date,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with Session(sqlite_engine) as session, session.begin():
        assert import_records(session, read_table(path), "M002", at("2024-09-01T09:00")).added == len(rows)
    with Session(sqlite_engine) as session:
        assert set(session.scalars(select(Evidence.kind))) == set(columns.KIND_DOCS)

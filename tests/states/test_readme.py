"""The README's state diagram is the machine's, generated: it cannot drift."""

from __future__ import annotations

from pathlib import Path

from reports.diagram import mermaid


def test_readme_member_machine_is_generated_from_the_machine() -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- member-machine:start -->")[1].split("<!-- member-machine:end -->")[0]
    assert block.strip() == "```mermaid\n" + mermaid("member") + "\n```"

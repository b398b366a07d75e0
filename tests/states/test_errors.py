"""Every error a person can cause says why in Chinese and in English: checked at every place one is made, by reading
the source (no campaign needed), and the texts survive what Prefect and multiprocessing do to exceptions."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

from states.errors import CampaignError, ConditionsUnmet, MalformedFile, Refused

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("states", "readers", "notices", "reports", "cli", "flows")
CJK = re.compile("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")  # Chinese, with its full-width punctuation


def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for pkg in PACKAGES for path in (ROOT / pkg).rglob("*.py")}


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """CampaignError and every class deriving from it, however far down, by name."""
    classes = [node for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    found = {"CampaignError"}
    while True:
        more = {c.name for c in classes if any(isinstance(b, ast.Name) and b.id in found for b in c.bases)} - found
        if not more:
            return found
        found |= more


def _literal_text(node: ast.expr) -> str | None:
    """The literal words of a string or f-string (its replacement fields left out); None for any other expression,
    which passes on a text made elsewhere (`zh=exc.why_zh`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    if isinstance(node, ast.BinOp):
        parts = [_literal_text(node.left), _literal_text(node.right)]
        return "".join(p for p in parts if p is not None)
    return None


def _is_super_init(node: ast.Call) -> bool:
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == "__init__" and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "super")


def _own_words(trees: dict[Path, ast.Module], names: set[str]) -> set[str]:
    """Error classes whose `__init__` takes no `zh`: they write their texts themselves (checked at their
    `super().__init__`), so a call of one passes other arguments."""
    own = set()
    for tree in trees.values():
        for c in ast.walk(tree):
            if isinstance(c, ast.ClassDef) and c.name in names:
                for f in c.body:
                    takes = {a.arg for a in (*f.args.args, *f.args.kwonlyargs)} if isinstance(f, ast.FunctionDef) else set()
                    if isinstance(f, ast.FunctionDef) and f.name == "__init__" and "zh" not in takes:
                        own.add(c.name)
    return own


def _constructions(trees: dict[Path, ast.Module], names: set[str]) -> list[tuple[str, ast.Call]]:
    """Every call of an error class, and every `super().__init__` inside one below the root (which hands its English
    to Exception)."""
    own = _own_words(trees, names)
    made = []
    for path, tree in trees.items():
        inside = {id(n) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and c.name in names - {"CampaignError"}
                  for n in ast.walk(c)}
        for node in ast.walk(tree):
            called = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names - own
            if called or (isinstance(node, ast.Call) and id(node) in inside and _is_super_init(node)):
                made.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return made


def test_every_error_the_code_makes_has_a_chinese_and_an_english_text() -> None:
    trees = _trees()
    names = _error_classes(trees)
    assert {"Refused", "BadInput", "MalformedFile", "KeyUnavailable", "ToolFailed"} <= names
    made = _constructions(trees, names)
    assert len(made) > 150  # the walk finds the raises (about 170 of them), not nothing
    missing, english = [], []
    for where, call in made:
        keywords = {k.arg: k.value for k in call.keywords}
        if "zh" not in keywords or "en" not in keywords:
            missing.append(where)
            continue
        text = _literal_text(keywords["zh"])
        if text is not None and not CJK.search(text):
            english.append(f"{where}: {text!r}")
    assert not missing, f"made without zh= and en=: {missing}"
    assert not english, f"a Chinese text with no Chinese in it: {english}"


def test_an_error_cannot_be_made_without_both_texts() -> None:
    with pytest.raises(TypeError):
        Refused("only English")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Refused(en="only English")  # type: ignore[call-arg]


def test_str_is_english_and_text_picks_the_language() -> None:
    error = Refused(zh="不能办理", en="cannot be done")
    assert str(error) == "cannot be done" == error.text("en")
    assert error.text("zh-CN") == "不能办理"


def test_malformed_file_names_the_place_in_the_language_of_its_reader() -> None:
    at_line = MalformedFile("roster.csv", 5, "role", zh="有误", en="is wrong")
    assert str(at_line) == "roster.csv, line 5, column role: is wrong"
    assert at_line.zh == "roster.csv 第5行，角色 (role) 列：有误"
    whole = MalformedFile("roster.csv", None, None, zh="无法读取", en="cannot read")
    assert (whole.zh, whole.en) == ("roster.csv：无法读取", "roster.csv: cannot read")
    header = MalformedFile("r.csv", 1, None, zh="是空文件", en="is empty")
    assert (header.zh, header.en) == ("r.csv 第1行：是空文件", "r.csv, line 1: is empty")
    cell = MalformedFile("b.xlsx", 3, "branch_id", zh="没有", en="unknown", sheet="计票", letter="A", header="支部编号")
    assert cell.zh == "b.xlsx [计票] 第3行 A列 支部编号 (branch_id)：没有"
    assert cell.en == "b.xlsx [计票] 第3行 A列 支部编号 (branch_id): unknown"


@pytest.mark.parametrize("error", [
    Refused(zh="不能办理", en="cannot be done"),
    ConditionsUnmet(zh="条件不满足", en="conditions do not hold", unmet=[{"condition": "study_hours"}]),
    MalformedFile("r.csv", 2, "kind", zh="有误", en="bad"),
])
def test_both_texts_survive_pickling(error: CampaignError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and (again.zh, again.en, str(again)) == (error.zh, error.en, str(error))
    assert again.__dict__ == error.__dict__

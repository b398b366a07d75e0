"""The arrows run one way: the command line and flows call notices, reports and readers; those call states/; states/
imports none of them. Read from every module's import statements (lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What each package of the product may import, besides itself and third-party code.
ALLOWED: dict[str, set[str]] = {
    "states": set(),
    "readers": {"states"},
    "notices": {"states"},
    "reports": {"states"},
    "templates": set(),
    "migrations": {"states"},
    "flows": {"states", "readers", "notices", "reports"},
    "cli": {"states", "readers", "notices", "reports", "flows"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every `import x` and `from x import …` in the file (relative imports are the file's own
    package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def edges() -> list[tuple[str, str, str]]:
    """(package, file, imported product package) for every cross-package import in the product."""
    found = []
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for target in imported_packages(path) & set(ALLOWED):
                if target != package:
                    found.append((package, str(path.relative_to(ROOT)), target))
    return found


def test_the_graph_is_read() -> None:
    # Guard against a walker that sees nothing: these edges exist and are allowed.
    seen = {(package, target) for package, _, target in edges()}
    assert {("cli", "states"), ("flows", "notices"), ("reports", "states"), ("readers", "states")} <= seen


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_one_way(package: str) -> None:
    wrong = [f"{file} imports {target}" for pkg, file, target in edges() if pkg == package and target not in ALLOWED[pkg]]
    assert not wrong, wrong


def test_every_product_package_is_declared() -> None:
    # A new top-level package must take its place in the graph (and in pyproject's package list).
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(ALLOWED)
    declared = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert all(f'"{p}"' in declared for p in packages)

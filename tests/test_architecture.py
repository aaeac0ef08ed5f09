"""The layout's rules, checked: which package may import which (the table in README.md,
"Architecture"). A package reaches the shell only through `hotline.wiring` and `hotline.web`,
and a job module names the wiring's type for the type checker only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.config import PROJECT_ROOT

# Our own packages each may import, besides itself and the standard library.
OWN = {
    "cases": set(),
    "transcription": set(),
    "routing": {"cases"},
    "knowledge": {"cases", "routing"},  # DESIGN.md: nothing of Flask or Twilio
    "delivery": {"cases"},
    "emulator": {"transcription.audio"},
    "ivr": {"cases", "transcription", "routing", "knowledge", "delivery", "hotline.wiring"},
    "console": {"cases", "routing", "knowledge", "hotline.wiring", "hotline.web", "hotline.charts"},
    "public_site": {
        "cases",
        "routing",
        "knowledge",
        "hotline.wiring",
        "hotline.web",
        "hotline.charts",
    },
    # DESIGN.md: the API may import routing (Open311 POSTs queue the routing job).
    "api": {"cases", "routing", "hotline.wiring"},
}
# Imports a job module may make for the type checker only (`if TYPE_CHECKING:`).
TYPE_ONLY = {"hotline.wiring"}
# Third-party frameworks a package must not import: the domain and the engines stay pure.
FORBIDDEN = {
    "cases": {"flask", "flask_babel", "flask_login", "flask_wtf", "twilio", "celery"},
    "transcription": {"flask", "sqlalchemy", "twilio", "celery"},
    "routing": {"flask", "twilio"},
    "knowledge": {"flask", "twilio"},
    "delivery": {"flask"},
    "emulator": {"flask", "sqlalchemy", "celery"},
}
PACKAGES = [*sorted(OWN), "hotline"]


def imports(path: Path) -> Iterator[tuple[str, bool, int]]:
    """(module, for the type checker only, line) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in type_only, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", id(node) in type_only, node.lineno


def allowed(module: str, rules: set[str]) -> bool:
    return any(module == rule or module.startswith(rule + ".") for rule in rules)


@pytest.mark.parametrize("package", sorted(OWN))
def test_a_package_imports_only_what_the_architecture_allows(package: str) -> None:
    ours = set(PACKAGES)
    broken = []
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        for module, type_only, line in imports(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}"
            if top in ours and top != package:
                rules = OWN[package] | (TYPE_ONLY if type_only else set())
                if not allowed(module, rules):
                    broken.append(where)
            elif top in FORBIDDEN.get(package, set()):
                broken.append(where)
    assert broken == []


def test_every_package_is_in_the_table() -> None:
    found = {
        path.parent.name
        for path in PROJECT_ROOT.glob("*/__init__.py")
        if path.parent.name not in ("tests", "bench", "migrations")
    }
    assert found == set(PACKAGES)

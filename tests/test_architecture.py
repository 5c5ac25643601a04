"""The import direction of the design: storage knows nothing of the others, and so on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"bot", "handlers", "content_templates", "scheduler", "storage"}
ALLOWED = {
    "storage": set(),
    "content_templates": set(),
    "handlers": {"storage", "content_templates"},
    "scheduler": {"storage", "content_templates", "handlers"},
    "bot": OURS - {"bot"},
}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in (ROOT / package).rglob("*.py")
        for other in imported_packages(path) - ALLOWED[package] - {package}
    }
    assert not wrong, sorted(wrong)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from bot.app import build_app\nimport handlers.updates\nfrom . import x\n")
    assert imported_packages(module) == {"bot", "handlers"}

"""The import direction of the design: storage knows nothing of the others, and so on;
inside `bot/`, the command line sits on top and the settings at the bottom."""

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
# The rooms of `bot/`, top floor first. A module may import its own room and the rooms on
# lower floors; rooms on one floor (console, platforms) do not import each other.
FLOORS: tuple[frozenset[str], ...] = (
    frozenset({"__main__"}),
    frozenset({"cli"}),
    frozenset({"web"}),
    frozenset({"console", "platforms"}),
    frozenset({"shared"}),
    frozenset({"settings"}),
    frozenset({"imports"}),
)


def imports_of(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """What `path` imports, at its top or inside a function: (module, names taken from it)."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, tuple(alias.name for alias in node.names)))
    return found


def imported_packages(path: Path) -> set[str]:
    return {module.split(".")[0] for module, _ in imports_of(path)} & OURS


def bot_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Each module of `root`/bot → the modules of bot it imports (`from package import
    module` counts as the module)."""
    modules = {
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (root / "bot").rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for module, names in imports_of(path):
            submodules = {f"{module}.{n}" for n in names} & modules.keys()
            imported |= submodules or ({module} & modules.keys())
        graph[name] = imported - {name}
    graph.pop("bot", None)
    return graph


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__main__"


def floor(module: str) -> int:
    return next(level for level, rooms in enumerate(FLOORS) if room(module) in rooms)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} imports {other} ({room(module)} may not import {room(other)})"
        for module, imported in graph.items()
        for other in imported
        if room(other) != room(module) and floor(other) <= floor(module)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph` (strongly connected parts of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative: a deep chain of imports must not hit the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    member = stack.pop()
                    part.append(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {other}"
        for path in (ROOT / package).rglob("*.py")
        for other in imported_packages(path) - ALLOWED[package] - {package}
    }
    assert not wrong, sorted(wrong)


def test_every_room_of_bot_has_a_floor() -> None:
    rooms = {room(module) for module in bot_imports()}
    placed = set().union(*FLOORS)
    assert rooms <= placed, f"rooms of bot/ on no floor: {sorted(rooms - placed)}"


def test_bot_imports_run_down_the_floors() -> None:
    assert not upward_imports(bot_imports())


def test_bot_has_no_import_circles() -> None:
    assert not circles(bot_imports())


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from bot.web.app import build_app\nimport handlers.updates\nfrom . import x\n")
    assert imported_packages(module) == {"bot", "handlers"}


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    for name, text in {
        "bot/__init__.py": "",
        "bot/settings/__init__.py": "",
        "bot/settings/model.py": "def load():\n    from bot.web.app import build_app\n",
        "bot/web/__init__.py": "",
        "bot/web/app.py": "from bot.settings.model import load\n",
        "bot/console/__init__.py": "",
        "bot/console/page.py": "from bot.platforms.wecom import client\n",
        "bot/platforms/__init__.py": "",
        "bot/platforms/wecom/__init__.py": "",
        "bot/platforms/wecom/client.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = bot_imports(tmp_path)
    assert upward_imports(graph) == [
        "bot.console.page imports bot.platforms.wecom.client (console may not import platforms)",
        "bot.settings.model imports bot.web.app (settings may not import web)",
    ]
    assert circles(graph) == [["bot.settings.model", "bot.web.app"]]

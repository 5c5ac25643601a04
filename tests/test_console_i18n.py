"""Every phrase the console shows in Chinese has its English."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bot.console.i18n import LOCALE, english, translator

CONSOLE = Path(__file__).parents[1] / "bot" / "console"
# _("…") in templates, with either quote.
TEMPLATE_PHRASE = re.compile(r"""_\(\s*(?:"([^"]+)"|'([^']+)')""")
HAN = re.compile(r"[\u4e00-\u9fff]")


def phrases_in_templates() -> set[str]:
    found: set[str] = set()
    for path in (CONSOLE / "templates").glob("*.html"):
        for match in TEMPLATE_PHRASE.finditer(path.read_text(encoding="utf-8")):
            found.add(match.group(1) or match.group(2))
    return found


def chinese_literals_in_templates() -> set[str]:
    """Phrases passed through _() indirectly: `_({"open": "待办"}[s])` and the like."""
    found: set[str] = set()
    for path in (CONSOLE / "templates").glob("*.html"):
        for block in re.findall(r"_\(\s*\{[^}]*\}", path.read_text(encoding="utf-8")):
            found.update(re.findall(r'"([^"]*[\u4e00-\u9fff][^"]*)"', block))
    return found


def phrases_in_python() -> set[str]:
    """Chinese strings the console's Python hands to pages: messages and labels."""
    found: set[str] = set()
    for path in CONSOLE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and HAN.search(node.value):
                if " / " in node.value:  # plain-text errors already carry both languages
                    continue
                found.add(node.value)
    return found


def test_every_console_phrase_has_english() -> None:
    catalogue = english()
    phrases = phrases_in_templates() | chinese_literals_in_templates() | phrases_in_python()
    missing = sorted(p for p in phrases if HAN.search(p) and p not in catalogue)
    assert not missing, "add these to bot/console/locale/*.toml:\n" + "\n".join(f'"{p}" = ""' for p in missing)


def test_no_phrase_is_translated_twice_differently() -> None:
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted(LOCALE.glob("*.toml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            found = re.match(r'^"(.+?)"\s*=\s*"(.*)"$', line)
            if not found:
                continue
            phrase, text = found.groups()
            if phrase in seen and seen[phrase][1] != text:
                clashes.append(f"{phrase}: {seen[phrase][0]} says {seen[phrase][1]!r}, {path.name} says {text!r}")
            seen.setdefault(phrase, (path.name, text))
    assert not clashes, "\n".join(clashes)


def test_fields_are_filled_after_translation() -> None:
    assert translator("en")("只显示前 {n} 条。", n=500) == "Showing the first 500 only."
    assert translator("zh")("只显示前 {n} 条。", n=500) == "只显示前 500 条。"

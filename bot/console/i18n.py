"""Console wording: Simplified Chinese is written in the pages; English comes from the
catalogues in `locale/*.toml`, each mapping a Chinese phrase to its English.

A phrase may hold `{name}` fields, filled after translation. A phrase with no English
entry shows in Chinese (tests/test_console_i18n.py keeps every phrase translated).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("zh", "en")
LOCALE = Path(__file__).with_name("locale")

Translate = Callable[..., str]


@cache
def english() -> dict[str, str]:
    catalogue: dict[str, str] = {}
    for path in sorted(LOCALE.glob("*.toml")):
        catalogue.update(tomllib.loads(path.read_text(encoding="utf-8")))
    return catalogue


def translator(language: str) -> Translate:
    table = english() if language == "en" else {}

    def translate(phrase: str, **fields: Any) -> str:
        text = table.get(phrase, phrase)
        return text.format(**fields) if fields else text

    return translate

"""Keyword rule matching: pure functions, no I/O."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from handlers.config import KeywordRule


def normalise(text: str) -> str:
    """Fold full-width to half-width (NFKC) and case, so ＶＩＰ, Vip and vip match alike."""
    return unicodedata.normalize("NFKC", text).casefold()


def rule_matches(rule: KeywordRule, normalised_text: str) -> bool:
    hits = (normalise(keyword) in normalised_text for keyword in rule.keywords)
    return all(hits) if rule.match == "all" else any(hits)


def matching_rules(rules: Iterable[KeywordRule], text: str) -> list[KeywordRule]:
    folded = normalise(text)
    return [rule for rule in rules if rule_matches(rule, folded)]

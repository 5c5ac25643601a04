"""Which keyword and regex rules a message matches, in time that does not grow with the
number of keyword rules: one Aho-Corasick pass finds every keyword of every rule at once.

Build a `MessageMatcher` once per rules version (building costs about as much as matching
a few thousand messages) and share it; it is read-only once built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import ahocorasick

from handlers.keywords import normalise
from handlers.rules import KeywordRule, RegexRule

MatchRule = KeywordRule | RegexRule


def valid_pattern(pattern: str) -> str | None:
    """What is wrong with a regex rule's pattern, or None when it compiles."""
    try:
        re.compile(pattern, re.IGNORECASE)
    except (re.error, OverflowError) as error:  # a huge repeat count raises OverflowError
        return str(error)
    return None


class MessageMatcher:
    __slots__ = ("_rules", "_automaton", "_needed", "_regexes")

    def __init__(self, rules: Sequence[MatchRule]) -> None:
        self._rules = tuple(rules)
        # Per rule: how many distinct keywords must be seen for it to match (0: a regex rule).
        self._needed = [0] * len(self._rules)
        self._regexes: list[tuple[int, re.Pattern[str]]] = []
        # Folded keyword -> every (rule index, keyword index) it stands for, so a keyword
        # shared by many rules is one automaton key and one hit.
        owners: dict[str, list[tuple[int, int]]] = {}
        for index, rule in enumerate(self._rules):
            if isinstance(rule, RegexRule):
                self._regexes.append((index, _compiled(rule)))
                continue
            # Keywords that fold alike (VIP, ｖｉｐ) are one keyword of the rule.
            distinct = list(dict.fromkeys(normalise(keyword) for keyword in rule.keywords))
            if not distinct or "" in distinct:
                # "" is in every text: such a rule would tag every member.
                raise ValueError(f"keyword rule {rule.id!r}: keywords must be present and not blank")
            self._needed[index] = len(distinct) if rule.match == "all" else 1
            for keyword_index, keyword in enumerate(distinct):
                owners.setdefault(keyword, []).append((index, keyword_index))
        self._automaton: ahocorasick.Automaton | None = None
        if owners:  # an automaton without keys refuses to search
            automaton = ahocorasick.Automaton()
            for keyword, pairs in owners.items():
                automaton.add_word(keyword, pairs)
            automaton.make_automaton()
            self._automaton = automaton

    @property
    def rules(self) -> tuple[MatchRule, ...]:
        return self._rules

    def matching(self, text: str) -> list[MatchRule]:
        """The rules `text` matches, in the order the rules were given."""
        folded = normalise(text)
        matched: set[int] = set()
        if self._automaton is not None:
            needed = self._needed  # a local: this loop runs for every keyword hit
            seen: dict[int, set[int]] = {}  # "all" rule index -> keyword indices found
            for _end, pairs in self._automaton.iter(folded):
                for index, keyword_index in pairs:
                    if needed[index] == 1:
                        matched.add(index)
                    else:
                        seen.setdefault(index, set()).add(keyword_index)
            matched.update(index for index, found in seen.items() if len(found) == needed[index])
        matched.update(index for index, regex in self._regexes if regex.search(folded))
        return [self._rules[index] for index in sorted(matched)]


def _compiled(rule: RegexRule) -> re.Pattern[str]:
    problem = valid_pattern(rule.pattern)
    if problem is not None:
        raise ValueError(f"regex rule {rule.id!r}: invalid pattern {rule.pattern!r}: {problem}")
    return re.compile(rule.pattern, re.IGNORECASE)

r"""Which keyword and regex rules a message matches, in time that does not grow with the
number of keyword rules: one Aho-Corasick pass finds every keyword of every rule at once.

Regex rules run on RE2 (google-re2), whose matching time is linear in the message: a
pattern like `预算\s*(\d+\s*)+元` that backtracks exponentially in Python's `re` cannot
stall the event loop on a long message. Features RE2 cannot bound (backreferences,
lookaround) are refused when the rules load, so `siyu check` names them.

Build a `MessageMatcher` once per rules version (building costs about as much as matching
a few thousand messages) and share it; it is read-only once built.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import ahocorasick
import re2

from handlers.keywords import normalise
from handlers.rules import KeywordRule, RegexRule

MatchRule = KeywordRule | RegexRule


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print its own complaint to stderr
    return options


_OPTIONS = _re2_options()


def valid_pattern(pattern: str) -> str | None:
    """What is wrong with a regex rule's pattern, or None when it compiles and matches in
    linear time."""
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: RE2 decides
            warnings.simplefilter("ignore")
            re.compile(pattern, re.IGNORECASE)  # Python's messages name the syntax error best
    except (re.error, OverflowError, RecursionError) as error:  # a huge repeat count raises OverflowError
        return str(error)
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else error
        return (
            f"cannot be matched in bounded time ({reason}); backreferences, lookaround and "
            "repeats over 1000 are not supported"
        )
    return None


class MessageMatcher:
    __slots__ = ("_rules", "_automaton", "_needed", "_regexes")

    def __init__(self, rules: Sequence[MatchRule]) -> None:
        self._rules = tuple(rules)
        # Per rule: how many distinct keywords must be seen for it to match (0: a regex rule).
        self._needed = [0] * len(self._rules)
        self._regexes: list[tuple[int, re2._Regexp]] = []
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


def _compiled(rule: RegexRule) -> re2._Regexp:
    problem = valid_pattern(rule.pattern)
    if problem is not None:
        raise ValueError(f"regex rule {rule.id!r}: invalid pattern {rule.pattern!r}: {problem}")
    return re2.compile(rule.pattern, _OPTIONS)

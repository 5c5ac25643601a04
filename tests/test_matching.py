"""MessageMatcher: keyword and regex rules found in one pass over the folded message."""

from __future__ import annotations

import random
import re

import pytest

from handlers.keywords import normalise
from handlers.matching import MatchRule, MessageMatcher, valid_pattern
from handlers.rules import KeywordRule, RegexRule


def kw(rule_id: str, *keywords: str, match: str = "any") -> KeywordRule:
    return KeywordRule(id=rule_id, tag=rule_id, keywords=keywords, match=match)  # type: ignore[arg-type]


def ids(rules: list[MatchRule]) -> list[str]:
    return [rule.id for rule in rules]


def test_any_needs_one_keyword_all_needs_every_one() -> None:
    matcher = MessageMatcher([kw("all", "生日", "蛋糕", match="all"), kw("any", "生日", "蛋糕")])
    assert ids(matcher.matching("想订一个生日蛋糕")) == ["all", "any"]
    assert ids(matcher.matching("蛋糕好吃")) == ["any"]
    assert ids(matcher.matching("今天天气好")) == []


def test_all_counts_keywords_that_fold_alike_once() -> None:
    # VIP and ｖｉｐ are one keyword once folded: "all" must not wait for a second one.
    matcher = MessageMatcher([kw("vip", "VIP", "ｖｉｐ", match="all")])
    assert ids(matcher.matching("我是vip")) == ["vip"]


def test_full_width_and_case_are_folded() -> None:
    matcher = MessageMatcher([kw("vip", "vip"), kw("upper", "ＶＩＰ会员")])
    assert ids(matcher.matching("我想办ＶＩＰ会员")) == ["vip", "upper"]
    assert ids(matcher.matching("Vip会员")) == ["vip", "upper"]


def test_traditional_text_matches_simplified_keywords() -> None:
    matcher = MessageMatcher([kw("bread", "面包"), kw("cake", "蛋糕", "奶油", match="all")])
    assert ids(matcher.matching("我想買麵包和奶油蛋糕")) == ["bread", "cake"]


def test_simplified_text_matches_traditional_keywords() -> None:
    matcher = MessageMatcher([kw("bread", "麵包"), kw("later", "後天")])
    assert ids(matcher.matching("后天来买面包")) == ["bread", "later"]


def test_overlapping_keywords_in_different_rules_are_all_found() -> None:
    matcher = MessageMatcher([kw("cake", "蛋糕"), kw("birthday", "生日蛋糕"), kw("day", "日蛋")])
    assert ids(matcher.matching("一个生日蛋糕")) == ["cake", "birthday", "day"]
    assert ids(matcher.matching("一个蛋糕")) == ["cake"]


def test_a_keyword_shared_by_two_rules_fires_both() -> None:
    matcher = MessageMatcher([kw("a", "慕斯", "芝士", match="all"), kw("b", "慕斯"), kw("c", "芝士")])
    assert ids(matcher.matching("慕斯")) == ["b"]
    assert ids(matcher.matching("芝士慕斯")) == ["a", "b", "c"]


def test_regex_rule_searches_folded_text() -> None:
    budget = RegexRule(id="budget", tag="高预算", pattern=r"预算\s*\d+万")
    matcher = MessageMatcher([budget, RegexRule(id="vip", tag="vip", pattern=r"VIP\d")])
    assert ids(matcher.matching("預算 ３０万左右")) == ["budget"]
    assert ids(matcher.matching("预算不多")) == []
    assert ids(matcher.matching("我是ｖｉｐ３")) == ["vip"]  # full-width, then case-insensitive


def test_invalid_regex_names_the_rule() -> None:
    with pytest.raises(ValueError, match=r"'budget-bad'.*missing \)"):
        MessageMatcher([kw("ok", "蛋糕"), RegexRule(id="budget-bad", tag="t", pattern=r"预算(\d+")])
    assert valid_pattern(r"预算(\d+") is not None
    assert valid_pattern("a{99999999999}") is not None  # OverflowError, not re.error
    assert valid_pattern(r"预算\s*\d+万") is None


def test_blank_keyword_is_refused() -> None:
    with pytest.raises(ValueError, match="'blank'"):
        MessageMatcher([kw("blank", "蛋糕", "")])


def test_result_follows_rule_order_not_text_order() -> None:
    rules: list[MatchRule] = [
        kw("z", "慕斯"),
        RegexRule(id="r", tag="r", pattern="面包"),
        kw("a", "蛋糕"),
        kw("m", "面包", "蛋糕", match="all"),
    ]
    assert ids(MessageMatcher(rules).matching("蛋糕面包慕斯")) == ["z", "r", "a", "m"]
    assert ids(MessageMatcher(rules[::-1]).matching("蛋糕面包慕斯")) == ["m", "a", "r", "z"]


def test_no_rules() -> None:
    assert MessageMatcher([]).matching("任何话") == []
    only_regex = MessageMatcher([RegexRule(id="r", tag="r", pattern="话")])
    assert ids(only_regex.matching("任何话")) == ["r"]


def reference(rules: list[MatchRule], text: str) -> list[MatchRule]:
    folded = normalise(text)
    found: list[MatchRule] = []
    for rule in rules:
        if isinstance(rule, RegexRule):
            hit = re.search(rule.pattern, folded, re.IGNORECASE) is not None
        else:
            hits = [normalise(keyword) in folded for keyword in rule.keywords]
            hit = all(hits) if rule.match == "all" else any(hits)
        if hit:
            found.append(rule)
    return found


# Few symbols, so that keywords overlap, repeat and hit often; traditional, simplified,
# full-width and upper-case forms of the same things mixed in.
ALPHABET = "面麵包蛋糕生日后後发髮财財aAａＡbＢ1１ "


def test_matcher_agrees_with_a_plain_loop() -> None:
    rng = random.Random(5)
    rules: list[MatchRule] = []
    for n in range(300):
        if n % 25 == 0:
            pattern = rng.choice([r"蛋糕\s*\d", r"a+b", r"后.?天", r"^生日", r"1{2}"])
            rules.append(RegexRule(id=f"r{n}", tag="t", pattern=pattern))
            continue
        keywords = ["".join(rng.choices(ALPHABET.strip(), k=rng.randint(1, 3))) for _ in range(rng.randint(1, 4))]
        rules.append(kw(f"k{n}", *keywords, match=rng.choice(["any", "all"])))
    matcher = MessageMatcher(rules)
    sizes = []
    for _ in range(400):
        text = "".join(rng.choices(ALPHABET, k=rng.randint(0, 30)))
        expected = reference(rules, text)
        assert matcher.matching(text) == expected, text
        sizes.append(len(expected))
    # The comparison means something only if messages match some rules and miss others.
    assert min(sizes) == 0 and max(sizes) > 20
    fired = matcher.matching("面包蛋糕生日后发财ab1")
    assert any(isinstance(rule, KeywordRule) and rule.match == "all" for rule in fired)


def test_a_backtracking_pattern_cannot_stall_on_a_long_message() -> None:
    # With Python's re this search backtracks exponentially: 26 digits took 20 s, and 60
    # would not finish before the test's timeout. RE2 answers in linear time.
    rule = RegexRule(id="budget", tag="预算", pattern=r"预算\s*(\d+\s*)+元")
    matcher = MessageMatcher([rule])
    assert matcher.matching("预算" + "1" * 60 + "！") == []
    assert matcher.matching("预算" + "1 " * 5000 + "元") == [rule]


def test_patterns_without_a_time_bound_are_refused_with_the_reason() -> None:
    for pattern in (r"(a)\1", r"蛋糕(?=券)", r"(?<!不)要", r"a{1,5000}"):
        problem = valid_pattern(pattern)
        assert problem is not None and "bounded time" in problem, pattern
    with pytest.raises(ValueError, match=r"'lookahead'.*bounded time"):
        MessageMatcher([RegexRule(id="lookahead", tag="t", pattern=r"蛋糕(?=券)")])

"""Benchmark: which of 10,000 keyword rules one 60-character message matches.

Rules have 2–4 keywords of 2–4 Chinese characters each (one in four needs all of its
keywords); messages are 60 characters of the same characters with a few rules' keywords
planted in them, a third written in traditional characters. Measured per message, with
`time.perf_counter_ns`, after a warm-up:

- **plain loop**: normalise the message once, then `keyword in text` for every (already
  normalised) keyword of every rule — what a straightforward implementation does;
- **tight loop**: the same search written for speed — one flat list of (keyword, rule)
  for the any-keyword rules tested in one comprehension, plain `for` loops with early
  exits for the all-keywords ones. The baseline of the headline ratio: the plain loop's
  generator expressions alone make it ~9x slower, which would flatter the matcher;
- **MessageMatcher**: `MessageMatcher.matching`, normalisation included;
- **normalise alone**: the folding both of them pay (NFKC, casefold, OpenCC t2s).

Also the time to build the matcher. Both ways must find the same rules for every message.
The target (issue 5) is under 50 µs per message for 10,000 rules, normalisation included.

    .venv/bin/python bench/keyword_rules.py [--rules 10000] [--messages 2000] [--seed 5]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import opencc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.keywords import normalise  # noqa: E402
from handlers.matching import MessageMatcher  # noqa: E402
from handlers.rules import KeywordRule  # noqa: E402

# Common characters of shop chat, so keywords collide and overlap as real ones do.
CHARACTERS = (
    "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会家可下而过天去能对小多然于心学"
    "么之都好看起发当没成只如事把还用第样道想作种开美总从无情己面最女但现前些所同日手又行意动方期它头经长儿回位分爱老因很"
    "给名法间斯知世什两次使身者被高已亲其进此话常与活正感见明问力理尔点文几定本公特做外孩相西果走将月十实向声车全信重三机"
    "工物气每并别真打太新比才便夫再书部水像眼等体却加电主界门利海受听表德少克代员许先口由死安写性马光白或住难望教命花结"
    "蛋糕面包慕斯芝士奶油吐司欧包可颂贝果甜品生日订购会员积分优惠券门店配送外卖预约定制低糖无糖控糖减脂蓝莓草莓抹茶巧克力"
)


def make_rules(rng: random.Random, count: int) -> list[KeywordRule]:
    rules = []
    for n in range(count):
        keywords = tuple("".join(rng.choices(CHARACTERS, k=rng.randint(2, 4))) for _ in range(rng.randint(2, 4)))
        match = "all" if rng.random() < 0.25 else "any"
        rules.append(KeywordRule(id=f"r{n}", tag=f"tag{n % 200}", keywords=keywords, match=match))
    return rules


def make_messages(rng: random.Random, rules: Sequence[KeywordRule], count: int) -> list[str]:
    to_traditional = opencc.OpenCC("s2t")
    messages = []
    for n in range(count):
        planted = [k for rule in rng.sample(rules, rng.randint(0, 3)) for k in rule.keywords[: rng.randint(1, 4)]]
        filler = rng.choices(CHARACTERS, k=60)
        for keyword in planted:
            at = rng.randrange(0, 60 - len(keyword))
            filler[at : at + len(keyword)] = keyword
        message = "".join(filler)[:60]
        messages.append(to_traditional.convert(message) if n % 3 == 0 else message)
    return messages


def plain_loop(rules: Sequence[KeywordRule]) -> Callable[[str], list[KeywordRule]]:
    prepared = [(rule, tuple(normalise(k) for k in rule.keywords), rule.match == "all") for rule in rules]

    def matching(text: str) -> list[KeywordRule]:
        folded = normalise(text)
        found = []
        for rule, keywords, need_all in prepared:
            hits = (keyword in folded for keyword in keywords)
            if all(hits) if need_all else any(hits):
                found.append(rule)
        return found

    return matching


def tight_loop(rules: Sequence[KeywordRule]) -> Callable[[str], list[KeywordRule]]:
    any_pairs = [(normalise(k), n) for n, rule in enumerate(rules) if rule.match != "all" for k in rule.keywords]
    all_rules = [(n, tuple(normalise(k) for k in rule.keywords)) for n, rule in enumerate(rules) if rule.match == "all"]

    def matching(text: str) -> list[KeywordRule]:
        folded = normalise(text)
        hit = {n for keyword, n in any_pairs if keyword in folded}
        for n, keywords in all_rules:
            for keyword in keywords:
                if keyword not in folded:
                    break
            else:
                hit.add(n)
        return [rules[n] for n in sorted(hit)]

    return matching


def timed(function: Callable[[str], object], messages: Sequence[str], warm_up: int) -> tuple[list[float], list[object]]:
    for message in messages[:warm_up]:
        function(message)
    gc.collect()
    durations, results = [], []
    for message in messages:
        start = time.perf_counter_ns()
        result = function(message)
        durations.append((time.perf_counter_ns() - start) / 1000)
        results.append(result)
    return durations, results


def p99(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main(rule_count: int, message_count: int, seed: int) -> None:
    rng = random.Random(seed)
    rules = make_rules(rng, rule_count)
    messages = make_messages(rng, rules, message_count)
    warm_up = min(200, message_count)

    builds = []
    for _ in range(3):
        start = time.perf_counter_ns()
        matcher = MessageMatcher(rules)
        builds.append((time.perf_counter_ns() - start) / 1e6)

    loop_times, loop_results = timed(plain_loop(rules), messages, warm_up)
    tight_times, tight_results = timed(tight_loop(rules), messages, warm_up)
    matcher_times, matcher_results = timed(matcher.matching, messages, warm_up)
    fold_times, _ = timed(normalise, messages, warm_up)
    assert matcher_results == loop_results, "MessageMatcher and the plain loop disagree"
    assert tight_results == loop_results, "the tight loop and the plain loop disagree"
    hits = [len(found) for found in matcher_results]  # type: ignore[arg-type]

    print(f"{rule_count:,} rules, {message_count:,} messages of 60 characters, seed {seed}")
    print(f"rules matched per message: mean {statistics.mean(hits):.2f}, max {max(hits)}")
    print(f"matcher build: {statistics.median(builds):.0f} ms (median of 3)")
    print()
    tight_median, matcher_median = statistics.median(tight_times), statistics.median(matcher_times)
    print(f"| {'way':<16} | {'median µs':>10} | {'p99 µs':>10} |")
    print(f"| {'-' * 16} | {'-' * 9}: | {'-' * 9}: |")
    ways = (("plain loop", loop_times), ("tight loop", tight_times), ("MessageMatcher", matcher_times),
            ("normalise alone", fold_times))
    for name, durations in ways:
        print(f"| {name:<16} | {statistics.median(durations):>10.1f} | {p99(durations):>10.1f} |")
    print()
    print(f"tight loop / MessageMatcher (the in-run baseline): {tight_median / matcher_median:.0f}× at the median, "
          f"{p99(tight_times) / p99(matcher_times):.0f}× at p99")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=5)
    arguments = parser.parse_args()
    main(arguments.rules, arguments.messages, arguments.seed)

"""The configuration's checks as an operator reads them: which field a problem is about,
and the problem in the console's language. The checks themselves are `siyu check`'s
(English, for the command line); known shapes are put into words here, anything else is
shown as the checker said it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.console.i18n import Translate

# (pattern over the message after "key: ", Chinese phrase with the pattern's named fields)
_SHAPES: Sequence[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^unknown key$"), "没有这个设置项"),
    (re.compile(r"^required$"), "必须填写"),
    (re.compile(r"^template '(?P<name>[^']+)' not found$"), "找不到模板「{name}」"),
    (re.compile(r"^(?:template '[^']+': )?'(?P<var>[^']+)' is undefined$"), "用了不认识的变量「{var}」"),
    (re.compile(r"^(?:template '[^']+': )?'(?P<obj>[^']+)' has no attribute '(?P<var>[^']+)'$"),
     "「{obj}」没有「{var}」这一项"),
    (re.compile(r"^(?:template '[^']+' )?line (?P<line>\d+): (?P<detail>.+)$"), "第 {line} 行写法有误：{detail}"),
    (re.compile(r"^unknown tag '(?P<tag>[^']+)'.*$"), "没有任何规则、渠道或已知标签会给出标签「{tag}」"),
    (re.compile(r'^unknown layer "(?P<layer>[^"]+)" in scheme "(?P<scheme>[^"]+)".*$'),
     "分层方案「{scheme}」里没有「{layer}」这一层"),
    (re.compile(r"^Input should be a valid integer.*$"), "请填整数"),
    (re.compile(r"^Input should be a valid number.*$"), "请填数字"),
    (re.compile(r"^Input should be a valid string.*$"), "请填文字"),
    (re.compile(r"^Input should be a valid boolean.*$"), "请填 true 或 false"),
    (re.compile(r"^Input should be a valid (?:list|array).*$"), "请填一个列表"),
    (re.compile(r"^Input should be greater than or equal to (?P<n>\S+)$"), "不能小于 {n}"),
    (re.compile(r"^Input should be less than or equal to (?P<n>\S+)$"), "不能大于 {n}"),
    (re.compile(r"^String should have at least 1 character$"), "不能为空"),
    (re.compile(r"^'(?P<value>[^']+)' is not a time like (?P<like>\S+)$"), "「{value}」不是 {like} 这样的时间"),
    (re.compile(r"^duplicate (?P<what>.+?): (?P<names>.+)$"), "重复了：{names}"),
    (re.compile(r"^not valid TOML: (?P<detail>.+)$"), "TOML 写法有误：{detail}"),
]


@dataclass(frozen=True, slots=True)
class Problem:
    key: str  # the configuration key it is about ("" for the whole document)
    text: str  # in the console's language


def spoken(problem: str, _: Translate) -> Problem:
    """`key: message` from the checks, in words."""
    key, sep, message = problem.partition(": ")
    if not sep or " " in key.strip():
        key, message = "", problem
    message = message.strip()
    for pattern, phrase in _SHAPES:
        if found := pattern.match(message):
            return Problem(key, _(phrase, **found.groupdict()))
    return Problem(key, message)


def spoken_all(problems: Sequence[str], _: Translate) -> list[Problem]:
    return [spoken(p, _) for p in problems]


# -- what a message may use ----------------------------------------------------------------

# (variable as written in a template, what it is), offered by the editors' variable picker
VARIABLES: Sequence[tuple[str, str]] = (
    ("{{ member.name }}", "会员称呼"),
    ("{{ store.name }}", "会员所在门店（可能没有：用 {% if store %} 包住）"),
    ("{{ owner.name }}", "专属店员"),
    ("{{ persona.name }}", "人设的名字"),
    ("{{ persona.title }}", "人设的头衔"),
    ("{{ persona.signature }}", "人设的签名"),
    ("{{ message }}", "会员刚发来的话（自动回复）"),
    ("{{ festival }}", "节日名（关怀）"),
    ("{{ years }}", "入会年数（周年关怀）"),
)

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
    (re.compile(r'^(?:template \'[^\']+\': )?prints "None" for a member without a name'),
     '有的会员没有称呼，这里会显示 None：请写成 {{ member.name or "你好" }}，或先用 if 判断'),
    (re.compile(r"^(?:template '[^']+': )?'None' has no attribute '(?P<var>[^']+)'$"),
     "有的会员没有这一项（{var}）：请先用 if 判断再用"),
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
    (re.compile(r"^required: up to 64 characters, no spaces or colons$"), "必须填写：最多 64 个字符，不含空格和冒号"),
    (re.compile(r"^say when with either"), "请选择发送时间：重复或一次"),
    (re.compile(r'^unknown store code "(?P<code>[^"]+)"$'), "没有叫「{code}」的门店"),
    (re.compile(r'^unknown tag "(?P<tag>[^"]+)".*$'), "还没有「{tag}」这个标签，也没有规则会打上它"),
    (re.compile(r'^unknown channel "(?P<channel>[^"]+)"$'), "没有「{channel}」这个渠道"),
    (re.compile(r"^required: a template name.*$"), "必须填写"),
    (re.compile(r"^audience is empty"), "受众为空：请选择分层、标签或门店，或勾选所有人"),
    (re.compile(r"^not a valid cron line \((?P<detail>.+)\)$"), "不是有效的 cron 规则（{detail}）"),
    (re.compile(r"^must be a crontab line.*$"), "重复规则要写成 cron（分 时 日 月 星期）"),
    (re.compile(r'^"(?P<id>[^"]+)" is taken.*$'), "编号「{id}」已经有条目在用"),
    (re.compile(r"^an FAQ entry needs keywords or a pattern$"), "请填写问题里的词"),
    (re.compile(r"^must not contain blank words$"), "不能有空白的词"),
    # tag rules and layer conditions (bot/settings/rules.py, scheduler/layer_rules.py)
    (re.compile(r"^pattern is not a valid regular expression: (?P<detail>.+)$"), "不是有效的正则表达式：{detail}"),
    (re.compile(r"^a keyword rule needs at least one keyword$"), "请填写至少一个关键词"),
    (re.compile(r"^a regex rule needs a pattern$"), "请填写正则表达式"),
    (re.compile(r"^(?P<metric>\w+): '(?P<value>[^']*)' is not a comparison.*$"), "「{value}」不是数字（或 true、false）"),
    (re.compile(r"^(?P<metric>\w+): true/false takes == or != only$"), "true 或 false 只能用「等于」或「不等于」"),
    (re.compile(r"^required: days from 1 to 9999$"), "必须填写：1 到 9999 天"),
    (re.compile(r"^used twice in one layer$"), "同一层里这个指标只能用一次"),
    (re.compile(r"^List should have at least 1 item.*$"), "至少要有一项"),
    (re.compile(r"^must be a per cent from 0 to 50$"), "请填 0 到 50 之间的百分数"),
    # attachments (scheduler/mass_attachments.py, scheduler/moments.py)
    (re.compile(r"^at most (?P<n>\d+) bytes.*$"), "最多 {n} 个字节（一个汉字约占 3 个字节）"),
    (re.compile(r"^an http:// or https:// address$"), "请填 http:// 或 https:// 开头的网址"),
    (re.compile(r"^a page path ending in \.html.*$"), "小程序页面路径要以 .html 结尾，例如 pages/index.html"),
    (re.compile(r"^a mini-program AppID.*$"), "请填小程序的 AppID，例如 wx1234567890abcdef"),
    (re.compile(r"^required: the cover image file.*$"), "必须填写：封面图的文件名"),
    (re.compile(r"^at most (?P<max>\d+) attachments \(WeCom's limit\), (?P<n>\d+) given$"),
     "最多 {max} 个附件（企业微信的限制），现在有 {n} 个"),
    (re.compile(r"^only a .+ entry takes attachments$"), "只有企业微信群发、客户群群发可以带群发附件"),
    (re.compile(r"^a list of image files.*$"), "请填媒体文件夹里的图片文件名，多个用逗号分隔"),
    (re.compile(r'^"(?P<name>[^"]+)": no such file in .*$'), "媒体文件夹里没有「{name}」"),
    (re.compile(r'^"(?P<name>[^"]+)" is not an image$'), "「{name}」不是图片"),
    (re.compile(r'^"(?P<name>[^"]+)" is outside the media folder$'), "「{name}」不在媒体文件夹里"),
    (re.compile(r'^"(?P<name>[^"]+)" is a (?P<format>\S+) image; WeCom takes JPG or PNG$'),
     "「{name}」是 {format} 图片，企业微信只收 JPG 或 PNG"),
    (re.compile(r'^"(?P<name>[^"]+)" is (?P<mb>[\d.]+) MB; WeCom takes at most 10 MB$'), "「{name}」有 {mb} MB，企业微信最多收 10 MB"),
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

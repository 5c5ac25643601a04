"""The fields an import knows, and the headers a file may give each under.

A field is found in the file by the header the operator maps it to (configuration
`[import.members.columns]` / `[import.orders.columns]`, or `--column FIELD=HEADER`), else
by its own name or one of the usual Chinese headers below, the first that the file has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["members", "orders"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    required: bool
    headers: tuple[str, ...]  # looked for when no mapping names the header
    help: str


def _fields(*specs: FieldSpec) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in specs}


MEMBER_FIELDS = _fields(
    FieldSpec("member_no", True, ("会员号", "会员编号", "会员卡号", "卡号"), "the brand's member number; rows are matched by it"),
    FieldSpec("name", False, ("姓名", "会员姓名", "名字"), "name"),
    FieldSpec("phone", False, ("手机", "手机号", "手机号码", "电话", "联系电话"), "phone number"),
    FieldSpec("birthday", False, ("生日", "出生日期"), "birthday, solar or lunar"),
    FieldSpec("calendar", False, ("历法", "农历", "生日类型", "生日历法"), "the birthday's calendar"),
    FieldSpec("member_since", False, ("入会日期", "入会时间", "注册日期", "开卡日期"), "date she joined"),
    FieldSpec("paid_member", False, ("付费会员", "是否付费会员"), "paid member: yes or no"),
    FieldSpec("store", False, ("门店", "门店编号", "门店代码", "所属门店"), "store code"),
    FieldSpec("owner", False, ("导购", "专属店员", "专属导购", "导购工号"), "owning staff member's userid"),
    FieldSpec("referrer", False, ("推荐人", "推荐人会员号"), "the referring member's member_no"),
)

ORDER_FIELDS = _fields(
    FieldSpec("order_no", True, ("订单号", "订单编号", "单号"), "order number, unique"),
    FieldSpec("member_no", True, ("会员号", "会员编号", "会员卡号"), "the buyer's member number"),
    FieldSpec("amount", True, ("金额", "实付金额", "订单金额", "实付"), "amount in yuan"),
    FieldSpec("ordered_at", True, ("下单时间", "订单时间", "交易时间", "支付时间"), "when she ordered"),
    FieldSpec("store", False, ("门店", "门店编号", "门店代码"), "store code"),
)

FIELDS: dict[str, dict[str, FieldSpec]] = {"members": MEMBER_FIELDS, "orders": ORDER_FIELDS}


def unknown_fields(kind: str, names: object) -> list[str]:
    """The names among `names` that are no field of this kind of import."""
    return [name for name in names if name not in FIELDS[kind]]  # type: ignore[attr-defined]


def describe_fields(kind: str) -> str:
    return ", ".join(FIELDS[kind])

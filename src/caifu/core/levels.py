"""Data levels (JR/T 0158-2018) and how level-3+ values are masked for display.

Levels follow JR/T 0158-2018 证券期货业数据分类分级指引 as summarised in
``/work/shared/reference/compliance.md``: 4 极高, 3 高, 2 中, 1 低. A column's level comes from its
contract; values at ``MASK_THRESHOLD`` or above are shown masked until an audited "show".

Masking conventions (``/work/shared/reference/identifiers.md``): name ``张*`` / ``欧阳**``, ID
``110105********002X``, mobile ``138****8000``, card ``6222 **** **** 1234``, account
``A12*****89``, balances as a range such as ``50–100万``.

Every masker hides at least one character of any input of two or more characters: when a
value is too short for the "keep first m, last n" rule, it falls back to keeping only the
first character, so a malformed value is never shown in full by accident. Blanks around a
value are stripped first; they carry no information and would skew the kept positions.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import IntEnum, StrEnum
from typing import Final


class DataLevel(IntEnum):
    """Sensitivity level of a field or data set; a data set takes the maximum of its fields."""

    L1 = 1  # 低: may be public - aggregated, de-identified statistics
    L2 = 2  # 中: internal - derived tags and behaviour not tied to an identity
    L3 = 3  # 高: need-to-know - identity, accounts, holdings, trades, chat content
    L4 = 4  # 极高: authentication data; also bulk exports of level-3 records

    @property
    def label(self) -> str:
        """The standard's sensitivity word, e.g. ``"高"``."""
        return _LEVEL_LABELS[self]

    @property
    def title(self) -> str:
        """Display form, e.g. ``"3级（高）"``."""
        return f"{self.value}级（{self.label}）"


_LEVEL_LABELS: Final = {
    DataLevel.L1: "低",
    DataLevel.L2: "中",
    DataLevel.L3: "高",
    DataLevel.L4: "极高",
}

MASK_THRESHOLD: Final = DataLevel.L3


def must_mask(level: DataLevel | int) -> bool:
    """Whether values at ``level`` are masked by default (``ValueError`` for levels ∉ 1..4)."""
    return DataLevel(level) >= MASK_THRESHOLD


class MaskKind(StrEnum):
    """How a column is masked; contracts name it as a plain string (``mask: mobile``)."""

    NAME = "name"
    RESIDENT_ID = "resident_id"
    MOBILE = "mobile"
    BANK_CARD = "bank_card"
    ACCOUNT = "account"
    TEXT = "text"
    AMOUNT = "amount"


# Common two-character surnames (复姓). A name starting with one of these keeps both
# characters, so 欧阳娜娜 shows as 欧阳** rather than revealing a given-name character.
COMPOUND_SURNAMES: Final = frozenset(
    {
        "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙",
        "慕容", "长孙", "宇文", "司徒", "令狐", "夏侯", "轩辕", "端木",
        "独孤", "南宫", "西门", "百里", "呼延", "澹台", "万俟", "闻人",
    }
)  # fmt: skip


def _keep(value: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, star the rest."""
    if len(value) <= head + tail:
        return mask_text(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_text(value: str) -> str:
    """Generic masking: first character kept, the rest starred; one character -> ``*``."""
    value = value.strip()
    if len(value) <= 1:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 1)


def mask_name(value: str) -> str:
    """``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧阳**``; the surname stays, the length too."""
    value = value.strip()
    # A two-character name such as 欧阳 is surname 欧 + given name 阳, so the compound
    # surname rule applies only from three characters on.
    if len(value) >= 3 and value[:2] in COMPOUND_SURNAMES:
        return value[:2] + "*" * (len(value) - 2)
    return mask_text(value)


def mask_resident_id(value: str) -> str:
    """First 6 and last 4 kept: ``110105********002X``."""
    return _keep(value.strip(), 6, 4)


def mask_mobile(value: str) -> str:
    """First 3 and last 4 of the 11-digit number kept: ``138****8000`` (``+86`` dropped)."""
    value = value.strip()
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    return _keep(value, 3, 4)


def mask_bank_card(value: str) -> str:
    """``6222 **** **** 1234`` whatever the card length, so the length is not revealed."""
    digits = "".join(value.split()).replace("-", "")
    if len(digits) <= 8:
        return mask_text(digits)
    return f"{digits[:4]} **** **** {digits[-4:]}"


def mask_account(value: str) -> str:
    """Fund or securities account, first 3 and last 2 kept: ``A12*****89``."""
    return _keep(value.strip(), 3, 2)


_WAN: Final = 10_000
# (lower bound in yuan, label); a value falls in the last bucket whose bound it reaches.
# Bounds are compared, never divided by, so huge exponents cannot overflow the context.
_AMOUNT_BUCKETS: Final = (
    (Decimal(0), "0–1万"),
    (Decimal(1 * _WAN), "1–5万"),
    (Decimal(5 * _WAN), "5–10万"),
    (Decimal(10 * _WAN), "10–50万"),
    (Decimal(50 * _WAN), "50–100万"),
    (Decimal(100 * _WAN), "100–500万"),
    (Decimal(500 * _WAN), "500万以上"),
)
NEGATIVE_AMOUNT: Final = "负值"
UNREADABLE_AMOUNT: Final = "***"


def amount_range(value: Decimal | int) -> str:
    """Bucket a yuan amount for display: ``Decimal("600000")`` -> ``"50–100万"``.

    Lower bounds are inclusive (exactly 10 000 is ``1–5万``). A negative balance shows only
    its sign; NaN and infinities raise ``ValueError``.
    """
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError("amount must be a finite number")
    if amount < 0:
        return NEGATIVE_AMOUNT
    label = _AMOUNT_BUCKETS[0][1]
    for lower, bucket in _AMOUNT_BUCKETS:
        if amount >= lower:
            label = bucket
    return label


def _mask_amount(value: str) -> str:
    # A display path must not fail or echo the value, so unreadable amounts become stars.
    try:
        return amount_range(Decimal(value.strip()))
    except (InvalidOperation, ValueError):
        return UNREADABLE_AMOUNT


_MASKERS: Final = {
    MaskKind.NAME: mask_name,
    MaskKind.RESIDENT_ID: mask_resident_id,
    MaskKind.MOBILE: mask_mobile,
    MaskKind.BANK_CARD: mask_bank_card,
    MaskKind.ACCOUNT: mask_account,
    MaskKind.TEXT: mask_text,
    MaskKind.AMOUNT: _mask_amount,
}


def mask(kind: MaskKind | str, value: str | None) -> str | None:
    """Mask ``value`` the way ``kind`` says; ``None`` stays ``None`` (missing is not secret).

    An unknown ``kind`` raises ``ValueError`` rather than falling back to showing the value.
    """
    masker = _MASKERS[MaskKind(kind)]
    return None if value is None else masker(value)

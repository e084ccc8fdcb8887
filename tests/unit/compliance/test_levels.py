"""Data levels and masking.

Masking table: ../shared/reference/identifiers.md ("Masking conventions");
levels: ../shared/reference/compliance.md, JR/T 0158-2018.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caifu.core.levels import (
    MASK_THRESHOLD,
    DataLevel,
    MaskKind,
    amount_range,
    mask,
    mask_account,
    mask_bank_card,
    mask_mobile,
    mask_name,
    mask_resident_id,
    mask_text,
    must_mask,
)

# --- levels ---------------------------------------------------------------------------------


def test_levels_and_labels() -> None:
    assert [int(level) for level in DataLevel] == [1, 2, 3, 4]
    assert [level.label for level in DataLevel] == ["低", "中", "高", "极高"]
    assert DataLevel.L3.title == "3级（高）"
    assert max(DataLevel.L2, DataLevel.L3) is DataLevel.L3


def test_mask_threshold() -> None:
    assert MASK_THRESHOLD is DataLevel.L3
    assert [must_mask(level) for level in DataLevel] == [False, False, True, True]
    assert must_mask(3)
    with pytest.raises(ValueError):
        must_mask(5)


# --- the masking conventions table in identifiers.md, exactly -------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("name", "张三", "张*"),
        ("name", "欧阳娜娜", "欧阳**"),
        ("resident_id", "11010519491231002X", "110105********002X"),
        ("mobile", "13800138000", "138****8000"),
        ("bank_card", "6222020200001234", "6222 **** **** 1234"),
        ("account", "A123456789", "A12*****89"),
        ("amount", "600000", "50–100万"),
    ],
)
def test_masking_conventions_table(kind: str, value: str, shown: str) -> None:
    assert mask(kind, value) == shown


# --- individual maskers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("张", "*"),
        ("张三丰", "张**"),
        ("司马相如", "司马**"),
        ("诸葛亮", "诸葛*"),
        ("欧阳", "欧*"),  # surname 欧, given name 阳
        (" 李四 ", "李*"),
        ("", ""),
    ],
)
def test_mask_name(value: str, shown: str) -> None:
    assert mask_name(value) == shown


def test_mask_resident_id_lengths() -> None:
    assert mask_resident_id("440524800101001") == "440524*****1001"
    assert mask_resident_id("1101") == "1***"  # too short for 6+4: first character only


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("+8613800138000", "138****8000"),
        ("8613800138000", "138****8000"),
        (" 13800138000 ", "138****8000"),
        ("1380", "1***"),
    ],
)
def test_mask_mobile(value: str, shown: str) -> None:
    assert mask_mobile(value) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("6222020200112345679", "6222 **** **** 5679"),  # length hidden
        ("6222 0202 0000 1234", "6222 **** **** 1234"),
        ("6222-0202-0000-1234", "6222 **** **** 1234"),
        ("62220202", "6*******"),
    ],
)
def test_mask_bank_card(value: str, shown: str) -> None:
    assert mask_bank_card(value) == shown


def test_mask_account_and_text() -> None:
    assert mask_account("0123456789") == "012*****89"
    assert mask_account("A1234") == "A****"
    assert mask_text("上海市浦东新区") == "上******"
    assert mask_text("x") == "*"


@pytest.mark.parametrize(
    ("amount", "bucket"),
    [
        (Decimal("0"), "0–1万"),
        (Decimal("9999.99"), "0–1万"),
        (Decimal("10000"), "1–5万"),
        (Decimal("49999.99"), "1–5万"),
        (Decimal("50000"), "5–10万"),
        (Decimal("100000"), "10–50万"),
        (Decimal("500000"), "50–100万"),
        (Decimal("999999.99"), "50–100万"),
        (Decimal("1000000"), "100–500万"),
        (Decimal("5000000"), "500万以上"),
        (Decimal("1E+30"), "500万以上"),
        (Decimal("-0.01"), "负值"),
        (123456, "10–50万"),
    ],
)
def test_amount_range(amount: Decimal | int, bucket: str) -> None:
    assert amount_range(amount) == bucket


def test_amount_range_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        amount_range(Decimal("NaN"))
    with pytest.raises(ValueError):
        amount_range(Decimal("Infinity"))


def test_mask_dispatch() -> None:
    assert mask(MaskKind.MOBILE, None) is None
    assert mask("text", None) is None
    assert mask("amount", "not a number") == "***"
    assert mask("amount", "NaN") == "***"
    assert mask("amount", "1e999999999") == "500万以上"
    with pytest.raises(ValueError):
        mask("password", "secret")


# --- properties -----------------------------------------------------------------------------

# Inputs already containing "*" could legitimately mask to themselves; leave them out.
plain_text = st.text(alphabet=st.characters(exclude_characters="*"), min_size=2).filter(
    lambda s: len(s.strip()) >= 2
)

LENGTH_KEEPING = [
    MaskKind.NAME,
    MaskKind.RESIDENT_ID,
    MaskKind.ACCOUNT,
    MaskKind.TEXT,
]


@given(st.sampled_from(LENGTH_KEEPING), plain_text)
def test_masking_hides_something_and_keeps_length(kind: MaskKind, value: str) -> None:
    shown = mask(kind, value)
    assert shown is not None
    assert shown != value
    assert shown != value.strip()
    assert "*" in shown
    assert len(shown) == len(value.strip())


@given(plain_text)
def test_mobile_masking_hides_something(value: str) -> None:
    shown = mask_mobile(value)
    assert shown != value
    if len(value.strip()) == 11:
        assert len(shown) == 11


@given(st.text(alphabet="0123456789", min_size=9, max_size=19))
def test_bank_card_masking_is_fixed_width(digits: str) -> None:
    shown = mask_bank_card(digits)
    assert len(shown) == 19
    assert shown[-4:] == digits[-4:]
    assert shown != digits


@given(st.sampled_from(list(MaskKind)), st.text())
def test_mask_never_raises(kind: MaskKind, value: str) -> None:
    assert isinstance(mask(kind, value), str)

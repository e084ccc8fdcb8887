"""core.money: one rounding rule (half-up, away from zero) and one look for amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from caifu.core.money import figure, pct, round_fen, signed_yuan, to_decimal, to_fen, yuan


@pytest.mark.parametrize(("value", "fen"), [
    ("0.125", Decimal("0.13")),   # half-up; banker's rounding would give 0.12
    ("0.135", Decimal("0.14")),
    ("-0.125", Decimal("-0.13")),  # away from zero, symmetric for refunds and losses
    (2.675, Decimal("2.68")),      # the float's repr, not its binary 2.67499999…
    (1, Decimal("1.00")),
    (Decimal("1234.5"), Decimal("1234.50")),
])
def test_round_fen_is_half_up(value: object, fen: Decimal) -> None:
    assert round_fen(value) == fen  # type: ignore[arg-type]


def test_fen_and_decimal() -> None:
    assert to_fen("12.345") == 1235 and to_fen(-1.005) == -101 and to_fen(0) == 0
    assert to_decimal(None) is None and to_decimal(" 3.10 ") == Decimal("3.10")
    for bad in ("abc", "nan", "inf", True):
        with pytest.raises(ValueError, match="amount"):
            to_decimal(bad)  # type: ignore[arg-type]


def test_yuan_and_signed_yuan() -> None:
    assert yuan(1234567.125) == "1,234,567.13"
    assert yuan(-0.005) == "-0.01" and yuan(0) == "0.00"
    assert yuan(None) == "—" and yuan(None, none="") == ""
    assert yuan("n/a") == "n/a"  # a display never fails on a bad cell
    assert signed_yuan(3) == "+3.00" and signed_yuan("-3") == "-3.00"
    assert signed_yuan(0) == "0.00" and signed_yuan(None) == "—"


def test_pct() -> None:
    assert pct(0.1234) == "12.3%" and pct("0.00125", digits=2) == "0.13%"
    assert pct(-0.0125) == "-1.3%"          # half-up away from zero
    assert pct(-0.0001) == "0.0%"           # never "-0.0%"
    assert pct(0.05, digits=2, signed=True) == "+5.00%"
    assert pct(-0.05, signed=True) == "-5.0%"
    assert pct(None) == "—" and pct(None, none="") == ""


def test_a_metric_value_as_its_format_says() -> None:
    assert figure(12345, "count") == "12,345" and figure(0, "count") == "0"
    assert figure(Decimal("1234567.125"), "money") == "1,234,567.13"
    assert figure("1234.5", "money") == "1,234.50"  # the API's decimal text
    assert figure(0.123456, "ratio") == "12.35%" and figure(1, "ratio") == "100.00%"
    assert figure(2.5, "number") == "2.50" and figure(1234567.891, "number") == "1,234,567.89"
    assert figure(0.0012345, "number") == "0.001234"
    assert figure(Decimal("1500.50"), "shares") == "1,500.50"
    assert figure(None, "money") == "—" and figure(None, "count", none="") == ""

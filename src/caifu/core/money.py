"""Money and percentages as people read them: one rounding rule, one look, no I/O.

Amounts are yuan with two decimals (fen). Rounding is half-up, away from zero
(``ROUND_HALF_UP``: 0.125 → 0.13, -0.125 → -0.13) — 四舍五入, what brokers' statements and
the regulators' reports use, and what DuckDB's ``CAST(x AS DECIMAL(18, 2))`` does in the
pipelines, so a figure shown here equals the one stored there. Banker's rounding (half to
even) would remove a bias from sums of many rounded values, but caifu sums unrounded
decimals and rounds once, at the end; there the familiar rule matters more.

A float is read through its shortest repr (``0.1`` is 0.1, not 0.1000000000000000055…), so
``2.675`` rounds to 2.68 as a person expects. ``None`` is "unknown", shown as ``—`` unless the
caller says otherwise; it never becomes 0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN = Decimal("0.01")
DASH = "—"

Number = Decimal | int | float | str


def to_decimal(value: Number | None) -> Decimal | None:
    """``value`` as an exact Decimal; ``None`` stays ``None``; text that is not a finite
    number raises ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return d


def round_fen(value: Number) -> Decimal:
    """``value`` rounded half-up to fen (two decimals)."""
    d = to_decimal(value)
    assert d is not None
    return d.quantize(FEN, rounding=ROUND_HALF_UP)


def to_fen(value: Number) -> int:
    """``value`` in whole fen (1 yuan = 100 fen), rounded half-up."""
    return int(round_fen(value) * 100)


def yuan(value: Number | None, *, none: str = DASH) -> str:
    """``12,345.68``: thousands separators, two decimals, half-up; ``none`` for ``None``.
    Text that is not a number is shown as it is (a display never fails on a bad cell)."""
    if value is None:
        return none
    try:
        return f"{round_fen(value):,.2f}"
    except ValueError:
        return str(value)


def signed_yuan(value: Number | None, *, none: str = DASH) -> str:
    """``+1,234.50`` / ``-1,234.50`` / ``0.00``: a change, with its sign."""
    text = yuan(value, none=none)
    if value is None or text.startswith("-") or text == "0.00":
        return text
    try:
        round_fen(value)
    except ValueError:
        return text
    return "+" + text


def pct(fraction: Number | None, *, digits: int = 1, signed: bool = False,
        none: str = DASH) -> str:
    """A fraction as a percentage: ``pct(0.1234) == "12.3%"``; half-up like amounts."""
    if fraction is None:
        return none
    d = to_decimal(fraction)
    assert d is not None
    value = (d * 100).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    if value == 0:
        value = abs(value)  # never "-0.0%"
    return f"{value:{'+' if signed else ''}.{digits}f}%"


def figure(value: Number | None, fmt: str, *, none: str = DASH) -> str:
    """A governed metric's value as its ``format`` says (``count``, ``money``, ``ratio``,
    ``number``, ``shares``): ``12,345``, ``12,345.68``, ``12.34%``; what the CLI and the
    console show."""
    if value is None:
        return none
    if fmt == "ratio":
        return pct(value, digits=2)
    if fmt == "money":
        return yuan(value, none=none)
    if isinstance(value, float):  # an average or a share: two decimals, small ones 4 digits
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    return f"{value:,}"

"""The per-event checks (``data.contracts.rows``) follow the file checks' text rules."""

from __future__ import annotations

import datetime as dt

import pytest

from caifu.data.contracts import registry
from caifu.data.contracts.rows import check_record

NOW = dt.datetime(2025, 6, 1, 4)
EVENT = {"event_id": "E1", "customer_id": "C00001", "event_time": "2025-06-01 09:00:00",
         "event_type": "login"}


@pytest.mark.parametrize("blank", ["\t", "\u3000\u3000", " \u3000 ", "\u00a0", "\r\n"])
def test_whitespace_only_required_text_is_missing(blank: str) -> None:
    row, reasons = check_record(registry()["app_events"], {**EVENT, "event_id": blank, "page": blank},
                                utc_offset=dt.timedelta(hours=8), now=NOW)
    assert reasons == ["event_id:REQUIRED"]
    assert (row["event_id"], row["page"]) == (None, None)


def test_identifiers_are_normalised_before_they_are_checked() -> None:
    row, reasons = check_record(
        registry()["app_events"],
        {**EVENT, "customer_id": "Ｃ００００１", "security_code": "６００００\u2070"},
        utc_offset=dt.timedelta(hours=8), now=NOW)
    assert reasons == []
    assert (row["customer_id"], row["security_code"]) == ("C00001", "600000")


@pytest.mark.parametrize(("value", "upper", "expected"), [
    ("１０００００００４２", False, "1000000042"),
    ("11010519491231002x", True, "11010519491231002X"),
    ("ｆ００１", True, "F001"),
    ("C001\u3000", False, "C001 "),  # the trailing space is trimmed like any other
    ("²①ﬁ", False, "21fi"),
    ("张三", True, "张三"),
])
def test_normalise_code_is_nfkc_the_same_as_the_loaders(value: str, upper: bool,
                                                       expected: str) -> None:
    import pyarrow as pa

    from caifu.adapters.sources.files import _nfkc
    from caifu.core.ids import normalise_code

    assert normalise_code(value, upper=upper) == expected
    arrow = _nfkc(pa.array([value])).to_pylist()[0]
    assert (arrow.upper() if upper else arrow) == expected


def test_a_reference_is_normalised_like_its_target() -> None:
    from dataclasses import replace

    from caifu.core.errors import ContractError
    from caifu.data.contracts import Registry
    from caifu.data.contracts.tables import TABLES

    trades = next(t for t in TABLES if t.name == "trades")
    plain = replace(trades, columns=tuple(
        replace(c, normalise=None) if c.name == "customer_id" else c for c in trades.columns))
    with pytest.raises(ContractError, match="trades.customer_id: normalised unlike"):
        Registry([t if t is not trades else plain for t in TABLES])

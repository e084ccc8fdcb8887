"""The assessment contract's 投资品种 answer (``suitability_assessments.varieties``): codes or
Chinese names in, codes in contract order out; an unknown variety rejects the row as
``varieties:ENUM``; a blank answer is NULL (not asked). The file checks (Ibis, staging), the
per-record checks and ``members_of`` read it the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import pyarrow as pa
import pytest

from caifu.adapters.engines.duckdb import connect
from caifu.core.errors import ContractError
from caifu.core.suitability import varieties_of
from caifu.data.contracts import Column, members_of, registry
from caifu.data.contracts.rows import check_record
from caifu.pipelines.staging import REASONS, ROW, StagingOptions, check_rows

CONTRACT = registry()["suitability_assessments"]
OPTS = StagingOptions(today=dt.date(2025, 6, 1), now_utc=dt.datetime(2025, 6, 1, 4))
ROW_TEXT = {"assessment_id": "FX1", "customer_id": "C00001", "questionnaire_version": "2025v1",
            "assessed_on": "2025-05-01", "score": "55", "risk_level": "C3",
            "no_loss_tolerance": "否", "no_civil_capacity": "否", "valid_until": "2028-04-30"}

# (as the export writes it, as stored; None: rejected as varieties:ENUM)
CASES = [
    ("cash,fixed_income", "cash,fixed_income"),
    ("现金管理、固定收益", "cash,fixed_income"),
    ("权益，现金管理", "cash,equity"),  # contract order, whatever the answer's order
    (" Equity ; 衍生品类 ", "equity,derivative"),  # case and spaces around parts do not count
    ("固收；另类投资", "fixed_income,alternative"),
    ("\u3000另类\u3000", "alternative"),
    ("权益,equity,权益类", "equity"),  # one variety, three spellings: counted once
    ("cash,fixed_income,equity,derivative,alternative",
     "cash,fixed_income,equity,derivative,alternative"),
    ("黄金", None),
    ("cash,gold", None),  # one unknown part rejects the whole answer: no part is dropped
    ("cash,,equity", None),
    ("cash,", None),
    ("现金 管理", None),
    ("cash fixed_income", None),  # a space alone separates nothing
]


def _staged(values: list[str | None]) -> list[dict[str, Any]]:
    n = len(values)
    raw = ibis.memtable(pa.table({
        ROW: pa.array(range(1, n + 1), pa.int64()),
        **{k: pa.array([v] * n, pa.string()) for k, v in ROW_TEXT.items()},
        "varieties": pa.array(values, pa.string())}))
    out = connect().to_pyarrow(check_rows(raw, CONTRACT, OPTS)).to_pylist()
    return sorted(out, key=lambda r: r[ROW])


def test_codes_and_chinese_names_are_stored_as_codes_and_unknown_ones_rejected() -> None:
    rows = _staged([text for text, _ in CASES])
    assert [r["varieties"] for r in rows] == [stored for _, stored in CASES]
    assert [r[REASONS] for r in rows] == ["" if stored else "varieties:ENUM;"
                                          for _, stored in CASES]


@pytest.mark.parametrize("blank", [None, "", "   ", "\u3000"])
def test_a_blank_answer_is_null_not_asked(blank: str | None) -> None:
    (row,) = _staged([blank])
    assert (row["varieties"], row[REASONS]) == (None, "")
    assert varieties_of(row["varieties"]) is None  # …which restricts no variety


def test_the_python_rule_and_the_per_record_checks_agree_with_staging() -> None:
    col = CONTRACT["varieties"]
    for text, stored in CASES:
        assert members_of(col, text) == stored, text
        row, reasons = check_record(CONTRACT, {"varieties": text},
                                    utc_offset=dt.timedelta(hours=8), now=OPTS.now_utc)
        assert row["varieties"] == stored, text
        assert ("varieties:ENUM" in reasons) == (stored is None), (text, reasons)


def test_a_rejected_answer_says_all_that_is_wrong_with_the_row() -> None:
    n = 1
    raw = ibis.memtable(pa.table({
        ROW: pa.array([1], pa.int64()),
        **{k: pa.array([v] * n, pa.string()) for k, v in ROW_TEXT.items()},
        "horizon": pa.array(["forever"], pa.string()),
        "varieties": pa.array(["期货"], pa.string())}))
    (row,) = connect().to_pyarrow(check_rows(raw, CONTRACT, OPTS)).to_pylist()
    assert row[REASONS] == "horizon:ENUM;varieties:ENUM;"


def test_stored_varieties_read_back_as_the_investor_s_set() -> None:
    assert varieties_of("cash,fixed_income") == frozenset({"cash", "fixed_income"})
    assert varieties_of(None) is None
    with pytest.raises(ValueError, match="not an investment variety: gold"):
        varieties_of("cash,gold")


def test_set_column_mistakes_are_caught() -> None:
    with pytest.raises(ContractError, match="string column without enum"):
        Column("v", "string", "品种", members=("a",), enum=("a",))
    with pytest.raises(ContractError, match="string column without enum"):
        Column("v", "int", "品种", members=("a",))
    with pytest.raises(ContractError, match="names no member"):
        Column("v", "string", "品种", members=("a",), aliases=(("乙", "b"),))
    with pytest.raises(ContractError, match="aliases need members"):
        Column("v", "string", "品种", aliases=(("甲", "a"),))
    with pytest.raises(ContractError, match="lower case"):
        Column("v", "string", "品种", members=("A",))

"""The expression language of rule tags and segments: parsing, errors, validation, evaluation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caifu.core import expressions as ex
from caifu.core.errors import ConfigError
from caifu.pipelines.expressions import compile_expression

FIELDS = {"aum": "decimal", "trades_30d": "int", "channel": "string", "chinext_opened": "bool",
          "last_trade_date": "date", "aum_trend_30d": "float"}


def test_precedence_and_binds_tighter_than_or() -> None:
    e = ex.parse("aum > 1 or trades_30d = 0 and not chinext_opened")
    assert isinstance(e, ex.Or)
    assert isinstance(e.items[1], ex.And)
    assert e.items[1].items[1] == ex.Not(ex.BoolField(ex.Field("chinext_opened", 35)))


def test_literals_and_forms() -> None:
    assert ex.parse("aum >= 1000000.50") == ex.Compare(ex.Field("aum", 1), ">=",
                                                       ex.Const(Decimal("1000000.50")))
    assert ex.parse("last_trade_date < date '2026-01-31'").right == ex.Const(dt.date(2026, 1, 31))
    assert ex.parse("channel not in ('app', \"wecom\")") == ex.In(
        ex.Field("channel", 1), ("app", "wecom"), negated=True)
    assert ex.parse("aum between 1 and 5") == ex.Between(ex.Field("aum", 1), 1, 5, negated=False)
    assert ex.parse("aum is not null") == ex.IsNull(ex.Field("aum", 1), negated=True)
    assert ex.parse("aum <> 3").op == "!="
    assert ex.parse("AUM > 1 AND chinext_opened").items[1] == ex.BoolField(
        ex.Field("chinext_opened", 13))


def test_chinese_connectives_and_tags() -> None:
    e = ex.parse("tag:沉睡客户 且 非 tag:high_net_worth 或 aum > 0")
    assert isinstance(e, ex.Or)
    assert ex.tags_used(e) == {"沉睡客户", "high_net_worth"}
    assert ex.fields_used(e) == {"aum"}


@pytest.mark.parametrize(("text", "column", "fragment"), [
    ("aum >", 6, "unexpected end of expression"),
    ("aum > > 3", 7, "unexpected '> 3'"),
    ("(aum > 3", 9, "expected one of )"),
    ("aum > 3 and", 12, "unexpected end"),
    ("last_trade_date > date 'yesterday'", 24, "is not a date"),
    ("5", 2, "expected one of a comparison"),
    ("创业板 > 3", 1, "unexpected '创业板 > 3'"),
])
def test_parse_errors_say_where(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ex.ExpressionError) as info:
        ex.parse(text)
    assert info.value.column == column
    assert fragment in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_empty_and_huge_expressions_are_refused() -> None:
    with pytest.raises(ex.ExpressionError, match="is empty"):
        ex.parse("  ")
    with pytest.raises(ex.ExpressionError, match="limit is 4000"):
        ex.parse("aum > 1 or " * 500 + "aum > 1")


@pytest.mark.parametrize(("text", "message"), [
    ("aun > 3", "unknown feature 'aun'; did you mean 'aum'?"),
    ("aum > 'x'", "cannot compare number with string"),
    ("aum", "'aum' is not a yes/no feature"),
    ("chinext_opened > true", "> does not apply to yes/no values"),
    ("channel in (1, 2)", "cannot compare string with number"),
    ("5 > 3", "compares two constants"),
    ("tag:dormnt", "unknown tag 'dormnt'; did you mean tag:dormant?"),
])
def test_validation_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ex.ExpressionError, match=message.replace("?", r"\?").replace("(", r"\(")):
        ex.compile_checked(text, FIELDS, {"dormant"})


def test_rule_tags_may_not_refer_to_tags() -> None:
    with pytest.raises(ex.ExpressionError, match="may not refer to other tags"):
        ex.compile_checked("tag:dormant", FIELDS, tags=None)


def test_date_columns_accept_iso_strings() -> None:
    ex.compile_checked("last_trade_date >= '2026-01-01'", FIELDS, set())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aum>=<!()'\" andortag:1.5非且或 \t_")), max_size=40))
def test_any_text_parses_or_fails_with_an_expression_error(text: str) -> None:
    try:
        ex.parse(text)
    except ex.ExpressionError:
        pass


# --- evaluation: two-valued logic on a real engine ---------------------------------------------

ROWS = pa.table({
    "customer_id": ["a", "b", "c", "d"],
    "aum": pa.array([Decimal("10.00"), None, Decimal("500.00"), Decimal("0.00")],
                    pa.decimal128(18, 2)),
    "trades_30d": pa.array([3, 0, None, 1], pa.int64()),
    "channel": ["app", None, "wecom", "branch"],
    "chinext_opened": [True, None, False, False],
    "last_trade_date": pa.array([dt.date(2026, 1, 5), None, dt.date(2025, 6, 1), None]),
    "aum_trend_30d": [0.5, None, -0.2, None],
})


def _select(text: str, tags: dict[str, set[str]] | None = None) -> list[str]:
    con = ibis.duckdb.connect()
    t = ibis.memtable(ROWS)
    columns = {}
    for i, (tag, holders) in enumerate((tags or {}).items()):
        t = t.mutate(**{f"_t{i}": t.customer_id.isin(sorted(holders))})
        columns[tag] = f"_t{i}"
    expr = ex.compile_checked(text, FIELDS, set(columns))
    out = con.to_pyarrow(t.filter(compile_expression(t, expr, columns)).select("customer_id"))
    return sorted(out["customer_id"].to_pylist())


@pytest.mark.parametrize(("text", "expected"), [
    ("aum > 5", ["a", "c"]),
    ("not (aum > 5)", ["b", "d"]),  # a missing aum is "not > 5", never lost
    ("aum is null", ["b"]),
    ("channel in ('app', 'wecom')", ["a", "c"]),
    ("channel not in ('app')", ["c", "d"]),  # missing channel is in no list and in no negation
    ("not channel in ('app')", ["b", "c", "d"]),
    ("aum between 0 and 10", ["a", "d"]),
    ("aum not between 0 and 10", ["c"]),
    ("chinext_opened", ["a"]),
    ("not chinext_opened", ["b", "c", "d"]),
    ("last_trade_date >= date '2026-01-01' or trades_30d = 1", ["a", "d"]),
    ("aum_trend_30d <= -0.1", ["c"]),
    ("trades_30d > 0 且 非 tag:vip", ["d"]),
])
def test_evaluation(text: str, expected: list[str]) -> None:
    assert _select(text, {"vip": {"a"}}) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("tag:沉睡客户且aum>0", ex.And((ex.TagRef("沉睡客户", 5),
                                   ex.Compare(ex.Field("aum", 10), ">", ex.Const(0))))),
    ("tag:沉睡客户或tag:高净值", ex.Or((ex.TagRef("沉睡客户", 5), ex.TagRef("高净值", 14)))),
    ("aum > 0 and非 tag:x", ex.And((ex.Compare(ex.Field("aum", 1), ">", ex.Const(0)),
                                    ex.Not(ex.TagRef("x", 18))))),
    ("（aum\u3000>\u30000）", ex.Compare(ex.Field("aum", 2), ">", ex.Const(0))),
    ("android_user = true", ex.Compare(ex.Field("android_user", 1), "=", ex.Const(True))),
    ("notes_count > 1", ex.Compare(ex.Field("notes_count", 1), ">", ex.Const(1))),
])
def test_chinese_typing_and_keyword_prefixes(text: str, expected: ex.Expr) -> None:
    assert ex.parse(text) == expected


def test_deep_nesting_is_an_expression_error() -> None:
    with pytest.raises(ex.ExpressionError, match="nested too deeply"):
        ex.parse("非" * 3980 + "chinext_opened")


@pytest.mark.parametrize(("text", "message"), [
    ("last_trade_date > '2026-13-01'", "'2026-13-01' is not a date"),
    ("channel > date '2026-01-01'", "cannot compare string with date"),
    ("last_login_at < date '2026-01-02'", "a timestamp \\(UTC\\) compares only"),
    ("tag:dormant>1", "unexpected '>1'"),
])
def test_dates_strings_and_timestamps_do_not_mix(text: str, message: str) -> None:
    fields = {**FIELDS, "last_login_at": "timestamp"}
    with pytest.raises(ex.ExpressionError, match=message):
        ex.compile_checked(text, fields, {"dormant"})

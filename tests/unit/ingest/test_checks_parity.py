"""The Ibis identifier checks (``caifu.pipelines.checks``) agree with ``caifu.core.ids``.

Staging trims every value and turns '' into NULL before the checks run, so the generated
strings are non-empty and carry no surrounding whitespace. Each hypothesis example evaluates
all six checks over a list of strings in one DuckDB query.

Vectors: ../shared/reference/identifiers.md (GB 11643-1999, GB 32100-2015).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from caifu.adapters.engines.duckdb import connect
from caifu.core.ids import (
    USCC_ALPHABET,
    VALIDATORS,
    make_uscc,
    resident_id_check_char,
    resident_id_for,
    uscc_check_char,
    validate_resident_id,
)
from caifu.pipelines import checks

TODAY = dt.date(2025, 1, 1)
NAMES = ("resident_id", "uscc", "mobile", "sh_account", "sz_account", "sac_number")

# identifiers.md vectors plus the shapes around them
VECTORS = [
    "11010519491231002X", "11010519491231002x", "440524188001010014", "110101199003071233",
    "310115200002294583", "440305198511110022", "110105194912310021", "110105194902300027",
    "440524800101001", "440524800230001", "440524991301001",
    "91350100M000100Y43", "91440300708461136T", "91350100M000100Y42", "91350100M000100I43",
    "13800138000", "+8613800138000", "8613800138000", "19212345678", "12345678901", "1380013800",
    "A123456789", "B123456789", "C123456789", "a123456789", "0123456789", "012345678",
    "S0010120080012", "s0010120080012", "S001012008001",
]

# --- strategies ------------------------------------------------------------------------------

_CHINESE = "张王李赵一二三四五六七八九十〇零"
_ODD = "²٣０ｘ\u0301\n\t-+. IOSVZxy"  # unicode digits, fullwidth, combining, inner blanks
_ALPHABET = "0123456789" + "X" + USCC_ALPHABET + _CHINESE + _ODD


def _trimmed(s: str) -> bool:
    return s != "" and s == s.strip()


junk = st.text(alphabet=_ALPHABET, min_size=1, max_size=22).filter(_trimmed)
digits = st.text(alphabet="0123456789", min_size=1, max_size=20)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    birth = draw(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(2100, 12, 31)))
    address = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    value = resident_id_for(address, birth, draw(st.integers(0, 999)))
    if draw(st.booleans()):
        value = value[:17] + value[17].lower()
    return value


@st.composite
def id_shaped(draw: st.DrawFn) -> str:
    """18 (or 15) digits with a date part that may not exist, e.g. year 0000 or month 13."""
    year = draw(st.sampled_from(["0000", "0001", "1899", "1900", "1949", "2000", "2024",
                                 "2025", "2026", "9999"]))
    month = f"{draw(st.integers(0, 13)):02d}"
    day = f"{draw(st.integers(0, 32)):02d}"
    body = draw(st.text(alphabet="0123456789", min_size=6, max_size=6)) + year + month + day
    body += draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    if draw(st.booleans()):
        return body[:6] + year[2:] + month + day + body[14:]  # legacy 15 digits
    check = resident_id_check_char(body) if draw(st.booleans()) else draw(
        st.sampled_from("0123456789Xx"))
    return body + check


@st.composite
def usccs(draw: st.DrawFn) -> str:
    char = st.sampled_from(USCC_ALPHABET)
    value = make_uscc(draw(char), draw(char),
                      draw(st.text(alphabet="0123456789", min_size=6, max_size=6)),
                      "".join(draw(st.lists(char, min_size=8, max_size=8))))
    if draw(st.booleans()):  # one position changed, maybe to a letter outside the alphabet
        i = draw(st.integers(0, 17))
        value = value[:i] + draw(st.sampled_from(USCC_ALPHABET + "IOSVZiy")) + value[i + 1:]
    return value


@st.composite
def uscc_with_bad_org_check(draw: st.DrawFn) -> str:
    """Outer check right, organisation code check (position 17) wrong: USCC_ORG_CHECKSUM."""
    good = draw(usccs())
    first16 = good[:16]
    c17 = draw(st.sampled_from("0123456789X"))
    first17 = first16 + c17
    if any(c not in USCC_ALPHABET for c in first17):
        return good
    return first17 + uscc_check_char(first17)


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "86", "+86", "+", "086", "+87"]))
    return prefix + draw(st.sampled_from("0123456789")) + draw(
        st.sampled_from("0123456789")) + draw(st.text(alphabet="0123456789", min_size=8,
                                                      max_size=10))


@st.composite
def accounts(draw: st.DrawFn) -> str:
    letter = draw(st.sampled_from("ABCDEFSZas0"))
    return letter + draw(st.text(alphabet="0123456789", min_size=8, max_size=14))


values = st.one_of(junk, digits, resident_ids(), id_shaped(), usccs(), uscc_with_bad_org_check(),
                   mobiles(), accounts(), st.sampled_from(VECTORS))

# --- the comparison --------------------------------------------------------------------------


class Vectorised:
    """All six checks compiled once to one DuckDB query over a registered table of strings."""

    def __init__(self) -> None:
        self.backend = connect()
        t = ibis.table({"i": "int64", "s": "string"}, name="parity_values")
        expr = t.select(t.i, **{n: checks.check(n, t.s, TODAY) for n in NAMES}).order_by("i")
        self.sql = ibis.to_sql(expr, dialect="duckdb")

    def __call__(self, strings: list[str]) -> list[dict[str, str | None]]:
        values = pa.table({"i": pa.array(range(len(strings)), pa.int64()),
                           "s": pa.array(strings, pa.string())})
        self.backend.con.register("parity_values", values)
        try:
            return self.backend.con.sql(self.sql).to_arrow_table().to_pylist()
        finally:
            self.backend.con.unregister("parity_values")


@pytest.fixture(scope="module")
def vectorised() -> Iterator[Vectorised]:
    v = Vectorised()
    yield v
    v.backend.disconnect()


def expected(value: str) -> dict[str, str | None]:
    out = {name: VALIDATORS[name](value) for name in NAMES if name != "resident_id"}
    return {"resident_id": validate_resident_id(value, today=TODAY), **out}


def assert_parity(vectorised: Vectorised, strings: list[str]) -> None:
    got = vectorised(strings)
    mismatches = []
    for value, row in zip(strings, got, strict=True):
        want = expected(value)
        have = {name: row[name] for name in NAMES}
        if have != want:
            diff = {n: (want[n], have[n]) for n in NAMES if want[n] != have[n]}
            mismatches.append(f"{value!r}: (core, ibis) {diff}")
    assert not mismatches, "\n".join(mismatches)


def test_published_vectors(vectorised: Vectorised) -> None:
    assert_parity(vectorised, VECTORS)
    # and the vectors mean what identifiers.md says
    rows = {r["i"]: r for r in vectorised(VECTORS)}
    by_value = {v: rows[i] for i, v in enumerate(VECTORS)}
    assert by_value["11010519491231002X"]["resident_id"] is None
    assert by_value["110105194912310021"]["resident_id"] == "ID_CHECKSUM"
    assert by_value["110105194902300027"]["resident_id"] == "ID_DATE"
    assert by_value["440524800101001"]["resident_id"] is None
    assert by_value["91350100M000100Y43"]["uscc"] is None
    assert by_value["91440300708461136T"]["uscc"] is None
    assert by_value["91350100M000100Y42"]["uscc"] == "USCC_CHECKSUM"
    assert by_value["91350100M000100I43"]["uscc"] == "USCC_CHARS"
    assert by_value["+8613800138000"]["mobile"] is None
    assert by_value["12345678901"]["mobile"] == "MOBILE_FORMAT"
    assert by_value["S0010120080012"]["sac_number"] is None


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(strings=st.lists(values, min_size=1, max_size=60))
@example(strings=["000000000001010017"])  # year 0000: DuckDB reads it as 1 BC
@example(strings=["11010500000229001X", "110105000002290010"])
@example(strings=["1381234567８", "1381234567\n8", "e\u0301" * 9])
def test_vectorised_checks_equal_core(vectorised: Vectorised, strings: list[str]) -> None:
    assert_parity(vectorised, strings)

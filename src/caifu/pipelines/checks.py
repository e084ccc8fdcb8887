"""Identifier checks as Ibis expressions, the vectorised twins of ``caifu.core.ids``.

Each function takes a string column (already trimmed) and returns the same reason code as its
``core.ids`` counterpart, or NULL when the value passes. A property test holds the two
implementations to the same answers on generated strings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from caifu.core.ids import USCC_ALPHABET

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _null() -> ir.StringValue:
    return ibis.null().cast("string")


def _digit(s: ir.StringValue, i: int) -> ir.IntegerValue:
    return s.substr(i, 1).cast("int64")


def _date_of(yyyymmdd: ir.StringValue) -> ir.DateValue:
    iso = yyyymmdd.substr(0, 4) + "-" + yyyymmdd.substr(4, 2) + "-" + yyyymmdd.substr(6, 2)
    return iso.try_cast("date")


def resident_id(s: ir.StringValue, today: dt.date) -> ir.StringValue:
    n = s.length()
    born18 = _date_of(s.substr(6, 8))
    born15 = _date_of("19" + s.substr(6, 6))
    total = sum((_digit(s, i) * w for i, w in enumerate(_ID_WEIGHTS)), ibis.literal(0))
    check = ibis.literal("0123456789X").substr(((12 - total % 11) % 11).cast("int64"), 1)
    bad_date18 = born18.isnull() | (born18 > today) | (s.substr(6, 4) == "0000")  # DuckDB: 0000 is 1 BC
    bad_date15 = born15.isnull() | (born15 > today)
    return ibis.cases(
        ((n == 15) & ~s.re_search(r"^[0-9]{15}$"), "ID_CHARS"),
        ((n == 15) & bad_date15, "ID_DATE"),
        (n == 15, _null()),
        (n != 18, "ID_LENGTH"),
        (~s.re_search(r"^[0-9]{17}[0-9Xx]$"), "ID_CHARS"),
        (bad_date18, "ID_DATE"),
        (check != s.substr(17, 1).upper(), "ID_CHECKSUM"),
        else_=_null(),
    )


def _uscc_value(s: ir.StringValue, i: int) -> ir.IntegerValue:
    return ibis.literal(USCC_ALPHABET).find(s.substr(i, 1))


def _org_value(s: ir.StringValue, i: int) -> ir.IntegerValue:
    return ibis.literal(_ORG_ALPHABET).find(s.substr(i, 1))


def uscc(s: ir.StringValue) -> ir.StringValue:
    total = sum((_uscc_value(s, i) * w for i, w in enumerate(_USCC_WEIGHTS)), ibis.literal(0))
    check18 = ibis.literal(USCC_ALPHABET).substr(((31 - total % 31) % 31).cast("int64"), 1)
    org = sum((_org_value(s, 8 + i) * w for i, w in enumerate(_ORG_WEIGHTS)), ibis.literal(0))
    org_check = 11 - org % 11
    check17 = ibis.cases((org_check == 10, "X"), (org_check == 11, "0"),
                         else_=org_check.cast("string"))
    return ibis.cases(
        (s.length() != 18, "USCC_LENGTH"),
        (~s.re_search("^[" + USCC_ALPHABET + "]{18}$"), "USCC_CHARS"),
        (check18 != s.substr(17, 1), "USCC_CHECKSUM"),
        (check17 != s.substr(16, 1), "USCC_ORG_CHECKSUM"),
        else_=_null(),
    )


def _regex(pattern: str, code: str) -> Callable[[ir.StringValue], ir.StringValue]:
    def check(s: ir.StringValue) -> ir.StringValue:
        return ibis.ifelse(s.re_search(pattern), _null(), ibis.literal(code))

    return check


mobile = _regex(r"^(?:\+?86)?1[3-9][0-9]{9}$", "MOBILE_FORMAT")
sh_account = _regex(r"^[ABDF][0-9]{9}$", "SH_ACCOUNT_FORMAT")
sz_account = _regex(r"^[0-9]{10}$", "SZ_ACCOUNT_FORMAT")
sac_number = _regex(r"^[A-Z][0-9]{13}$", "SAC_FORMAT")


def check(name: str, s: ir.StringValue, today: dt.date) -> ir.StringValue:
    """The named check (a key of ``caifu.core.ids.VALIDATORS``) as an expression."""
    match name:
        case "resident_id":
            return resident_id(s, today)
        case "uscc":
            return uscc(s)
        case "mobile":
            return mobile(s)
        case "sh_account":
            return sh_account(s)
        case "sz_account":
            return sz_account(s)
        case "sac_number":
            return sac_number(s)
    raise ValueError(f"no vectorised check named {name!r}")

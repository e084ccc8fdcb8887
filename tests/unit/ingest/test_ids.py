"""Identifier validators against published vectors, plus properties of the checksums.

Vectors: ../shared/reference/identifiers.md, GB 11643-1999 / GB 32100-2015.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caifu.core.ids import (
    USCC_ALPHABET,
    VALIDATORS,
    luhn_valid,
    make_uscc,
    normalise_mobile,
    normalise_resident_id,
    resident_id_birth_date,
    resident_id_check_char,
    resident_id_for,
    resident_id_gender,
    uscc_check_char,
    validate_bank_card,
    validate_mobile,
    validate_resident_id,
    validate_sac_number,
    validate_sh_account,
    validate_sz_account,
    validate_uscc,
)

TODAY = date(2025, 1, 1)

# --- resident ID: vectors from identifiers.md (GB 11643-1999) -------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002X",
        "440524188001010014",
        "110101199003071233",
        "310115200002294583",  # leap day 2000-02-29
        "440305198511110022",
    ],
)
def test_resident_id_valid_vectors(value: str) -> None:
    assert validate_resident_id(value, today=TODAY) is None
    assert resident_id_check_char(value[:17]) == value[17]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("110105194912310021", "ID_CHECKSUM"),  # check should be X
        ("110105194902300027", "ID_DATE"),  # 1949-02-30
    ],
)
def test_resident_id_invalid_vectors(value: str, reason: str) -> None:
    assert validate_resident_id(value, today=TODAY) == reason


def test_resident_id_check_x() -> None:
    assert resident_id_check_char("11010519491231002") == "X"


def test_lowercase_x_accepted_and_normalised() -> None:
    assert validate_resident_id("11010519491231002x", today=TODAY) is None
    assert normalise_resident_id(" 11010519491231002x ") == "11010519491231002X"


def test_legacy_15_digit_upgrade_vector() -> None:
    assert validate_resident_id("440524800101001", today=TODAY) is None
    assert normalise_resident_id("440524800101001") == "440524198001010013"


def test_female_vector_and_birth_dates() -> None:
    assert resident_id_gender("440305198511110022") == "F"
    assert resident_id_gender("110101199003071233") == "M"
    assert resident_id_birth_date("310115200002294583") == date(2000, 2, 29)
    assert resident_id_birth_date("440524800101001") == date(1980, 1, 1)
    assert resident_id_gender("440524800101001") == "M"  # sequence 001


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "ID_LENGTH"),
        ("1101051949123100", "ID_LENGTH"),
        ("11010519491231002XX", "ID_LENGTH"),
        ("11010519491231002Y", "ID_CHARS"),
        ("1101051949123100X2", "ID_CHARS"),
        ("11010519491231002²", "ID_CHARS"),  # isdigit() would accept it
        ("44052480010100A", "ID_CHARS"),
        ("440524801301001", "ID_DATE"),  # month 13 in a legacy ID
        ("110105202501020015", "ID_DATE"),  # after TODAY
    ],
)
def test_resident_id_reasons(value: str, reason: str) -> None:
    assert validate_resident_id(value, today=TODAY) == reason


def test_future_birth_date_depends_on_today() -> None:
    value = resident_id_for("110105", date(2025, 1, 2), 1)
    assert validate_resident_id(value, today=TODAY) == "ID_DATE"
    assert validate_resident_id(value, today=date(2025, 1, 2)) is None


def test_normalise_rejects_invalid_without_echoing_value() -> None:
    with pytest.raises(ValueError, match="ID_CHECKSUM") as info:
        normalise_resident_id("110105194912310021")
    assert "110105194912310021" not in str(info.value)


def test_resident_id_for_rejects_bad_parts() -> None:
    with pytest.raises(ValueError, match="address6"):
        resident_id_for("11010", date(1990, 1, 1), 1)
    with pytest.raises(ValueError, match="seq3"):
        resident_id_for("110105", date(1990, 1, 1), 1000)
    with pytest.raises(ValueError, match="ID_CHARS"):
        resident_id_check_char("1101051949123100A")


# --- resident ID: properties ----------------------------------------------------------------

addresses = st.text(alphabet="0123456789", min_size=6, max_size=6)
births = st.dates(min_value=date(1800, 1, 1), max_value=TODAY)
sequences = st.integers(min_value=0, max_value=999)


@given(addresses, births, sequences)
def test_generated_ids_validate(address6: str, birth: date, seq3: int) -> None:
    value = resident_id_for(address6, birth, seq3)
    assert len(value) == 18
    assert validate_resident_id(value, today=TODAY) is None
    assert resident_id_birth_date(value) == birth
    assert resident_id_gender(value) == ("M" if seq3 % 2 else "F")


@given(addresses, births, sequences, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_substitution_is_detected(
    address6: str, birth: date, seq3: int, pos: int, replacement: str
) -> None:
    value = resident_id_for(address6, birth, seq3)
    if pos < 17 and replacement == "X":
        replacement = "0" if value[pos] != "0" else "1"
    if replacement == value[pos]:
        replacement = "0" if value[pos] != "0" else "1"
    flipped = value[:pos] + replacement + value[pos + 1 :]
    assert flipped != value
    assert validate_resident_id(flipped, today=TODAY) is not None


@given(
    addresses,
    st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)),
    sequences,
)
def test_legacy_upgrade_gives_valid_id(address6: str, birth: date, seq3: int) -> None:
    legacy = f"{address6}{birth:%y%m%d}{seq3:03d}"
    upgraded = normalise_resident_id(legacy)
    assert upgraded == resident_id_for(address6, birth, seq3)
    assert validate_resident_id(upgraded, today=TODAY) is None


# --- unified social credit code: vectors from identifiers.md (GB 32100-2015) ----------------


@pytest.mark.parametrize("value", ["91350100M000100Y43", "91440300708461136T"])
def test_uscc_valid_vectors(value: str) -> None:
    assert validate_uscc(value) is None
    assert uscc_check_char(value[:17]) == value[17]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91350100M000100Y42", "USCC_CHECKSUM"),
        ("91350100M000100I43", "USCC_CHARS"),  # I is not in the alphabet
        ("91350100M000100Y4", "USCC_LENGTH"),
        ("91350100m000100Y43", "USCC_CHARS"),
        ("91350100M000100O43", "USCC_CHARS"),
        ("S1350100M000100Y43", "USCC_CHARS"),
    ],
)
def test_uscc_invalid(value: str, reason: str) -> None:
    assert validate_uscc(value) == reason


def test_make_uscc_reproduces_vectors() -> None:
    assert make_uscc("9", "1", "350100", "M000100Y") == "91350100M000100Y43"
    assert make_uscc("9", "1", "440300", "70846113") == "91440300708461136T"


def test_uscc_org_checksum_reported_when_outer_check_is_consistent() -> None:
    # Wrong organisation check (5 instead of 4) with an outer check recomputed over it.
    first17 = "91350100M000100Y5"
    value = first17 + uscc_check_char(first17)
    assert validate_uscc(value) == "USCC_ORG_CHECKSUM"


def test_make_uscc_rejects_bad_parts() -> None:
    with pytest.raises(ValueError):
        make_uscc("9", "1", "35010", "M000100Y")
    with pytest.raises(ValueError):
        make_uscc("9", "1", "350100", "M000100I")
    with pytest.raises(ValueError):
        make_uscc("S", "1", "350100", "M000100Y")


@given(
    st.sampled_from("159Y"),
    st.sampled_from("123"),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=USCC_ALPHABET, min_size=8, max_size=8),
)
def test_generated_uscc_validate(registering: str, entity: str, region6: str, org8: str) -> None:
    assert validate_uscc(make_uscc(registering, entity, region6, org8)) is None


# --- mobile, bank card, accounts ------------------------------------------------------------


@pytest.mark.parametrize("value", ["13800138000", "+8613800138000", "19212345678"])
def test_mobile_pass(value: str) -> None:
    assert validate_mobile(value) is None


@pytest.mark.parametrize(
    "value", ["12345678901", "1380013800", "13800138000\n", "138001380001", "+8612800138000"]
)
def test_mobile_fail(value: str) -> None:
    assert validate_mobile(value) == "MOBILE_FORMAT"


def test_normalise_mobile() -> None:
    assert normalise_mobile("13800138000") == "+8613800138000"
    assert normalise_mobile("+8613800138000") == "+8613800138000"
    assert normalise_mobile("8613800138000") == "+8613800138000"
    assert normalise_mobile(" 138-0013-8000 ") == "+8613800138000"
    with pytest.raises(ValueError, match="MOBILE_FORMAT"):
        normalise_mobile("12345678901")


def test_luhn() -> None:
    assert luhn_valid("79927398713")  # the ISO/IEC 7812 worked example
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("")
    assert not luhn_valid("7992 7398 713")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("6222020200112345679", None),  # 19-digit, UnionPay prefix 62
        ("4111111111111111", None),
        ("4111111111111112", "CARD_CHECKSUM"),
        ("411111111111111", "CARD_FORMAT"),  # 15 digits
        ("41111111111111111111", "CARD_FORMAT"),  # 20 digits
        ("4111 1111 1111 1111", "CARD_FORMAT"),
    ],
)
def test_bank_card(value: str, reason: str | None) -> None:
    assert validate_bank_card(value) == reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("A123456789", None),
        ("B123456789", None),
        ("D123456789", None),
        ("F123456789", None),
        ("C123456789", "SH_ACCOUNT_FORMAT"),
        ("a123456789", "SH_ACCOUNT_FORMAT"),
        ("A12345678", "SH_ACCOUNT_FORMAT"),
        ("A123456789\n", "SH_ACCOUNT_FORMAT"),
    ],
)
def test_sh_account(value: str, reason: str | None) -> None:
    assert validate_sh_account(value) == reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [("0123456789", None), ("012345678", "SZ_ACCOUNT_FORMAT"), ("A123456789", "SZ_ACCOUNT_FORMAT")],
)
def test_sz_account(value: str, reason: str | None) -> None:
    assert validate_sz_account(value) == reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("S0010120080012", None),
        ("s0010120080012", "SAC_FORMAT"),
        ("S001012008001", "SAC_FORMAT"),
        ("00010120080012", "SAC_FORMAT"),
    ],
)
def test_sac_number(value: str, reason: str | None) -> None:
    assert validate_sac_number(value) == reason


def test_validator_registry() -> None:
    assert set(VALIDATORS) == {
        "resident_id",
        "uscc",
        "mobile",
        "bank_card",
        "sh_account",
        "sz_account",
        "sac_number",
    }
    assert VALIDATORS["resident_id"]("11010519491231002X") is None
    assert VALIDATORS["uscc"]("91350100M000100Y42") == "USCC_CHECKSUM"
    assert VALIDATORS["mobile"]("13800138000") is None


@given(st.sampled_from(sorted(VALIDATORS)), st.text())
def test_validators_never_raise(name: str, value: str) -> None:
    result = VALIDATORS[name](value)
    assert result is None or (isinstance(result, str) and result.isupper())

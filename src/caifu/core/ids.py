"""Chinese identifiers a broker handles: resident IDs, credit codes, mobiles, cards, accounts.

Formats, checksums and test vectors: ``/work/shared/reference/identifiers.md``
(GB 11643-1999 resident ID, GB 32100-2015 unified social credit code, GB 11714 organisation
code, Luhn for bank cards).

Validators take the value exactly as stored and return ``None`` when it is valid, otherwise a
short reason code (``"ID_CHECKSUM"``, ...). They never raise, because ingestion sends rejected
rows to the quarantine with that code and carries on. ``normalise_*`` functions first clean up
what people type (surrounding blanks, lowercase ``x``, separators) and raise ``ValueError``
when the result is still invalid.

Error messages never repeat the value: these are level-3 personal data and exception texts
end up in logs. The caller has the value; the message says which rule failed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Final, Literal

# --- identifiers as typed ---------------------------------------------------------------------


def normalise_code(value: str, *, upper: bool = False) -> str:
    """An identifier as it is checked and stored: NFKC, so full-width ``１０００`` is ``1000``
    (and U+3000 a space), then upper case if ``upper`` (a resident ID's ``x`` is ``X``).

    Which columns are normalised, and how, is each contract column's ``normalise``; the file
    loader applies the same NFKC (Arrow's ``utf8_normalize``) to the same columns.
    """
    value = unicodedata.normalize("NFKC", value)
    return value.upper() if upper else value


# --- resident ID number (GB 11643-1999) ------------------------------------------------------

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS: Final = "0123456789X"
_ASCII_DIGITS: Final = frozenset("0123456789")


def _is_ascii_digits(value: str) -> bool:
    # str.isdigit() also accepts "²" and Arabic-Indic digits; identifiers are ASCII only.
    return bool(value) and all(c in _ASCII_DIGITS for c in value)


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') for the first 17 digits."""
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("ID_CHARS: expected exactly 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[(12 - total % 11) % 11]


def _birth_date_or_none(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:  # 1949-02-30, month 13, year 0000 ...
        return None


def validate_resident_id(value: str, *, today: date | None = None) -> str | None:
    """``None`` if ``value`` is a valid 18- or legacy 15-character ID, else a reason code.

    Codes, checked in this order: ``ID_LENGTH``, ``ID_CHARS``, ``ID_DATE`` (date does not
    exist or lies after ``today``), ``ID_CHECKSUM``. A lowercase ``x`` check is accepted.
    """
    if len(value) == 15:
        # Legacy IDs (issued before 1999) carry a two-digit year in the 1900s and no check.
        if not _is_ascii_digits(value):
            return "ID_CHARS"
        born = _birth_date_or_none("19" + value[6:12])
        if born is None or born > (today or date.today()):
            return "ID_DATE"
        return None
    if len(value) != 18:
        return "ID_LENGTH"
    if not _is_ascii_digits(value[:17]) or value[17] not in "0123456789Xx":
        return "ID_CHARS"
    born = _birth_date_or_none(value[6:14])
    if born is None or born > (today or date.today()):
        return "ID_DATE"
    if resident_id_check_char(value[:17]) != value[17].upper():
        return "ID_CHECKSUM"
    return None


def normalise_resident_id(value: str) -> str:
    """Strip, upper-case and upgrade a 15-character ID to 18; ``ValueError`` if invalid."""
    cleaned = value.strip().upper()
    reason = validate_resident_id(cleaned)
    if reason is not None:
        raise ValueError(f"{reason}: not a valid resident ID number (GB 11643-1999)")
    if len(cleaned) == 15:
        first17 = cleaned[:6] + "19" + cleaned[6:]
        return first17 + resident_id_check_char(first17)
    return cleaned


def resident_id_birth_date(value: str) -> date:
    """Birth date encoded in a (15- or 18-character) ID; ``ValueError`` if invalid."""
    normal = normalise_resident_id(value)
    return date(int(normal[6:10]), int(normal[10:12]), int(normal[12:14]))


def resident_id_gender(value: str) -> Literal["M", "F"]:
    """``"M"`` for an odd sequence number, ``"F"`` for an even one (GB 11643-1999 §4.3)."""
    normal = normalise_resident_id(value)
    return "M" if int(normal[16]) % 2 == 1 else "F"


def resident_id_for(address6: str, birth: date, seq3: int) -> str:
    """Build a valid 18-character ID (demo data, tests); the date is not checked vs today."""
    if len(address6) != 6 or not _is_ascii_digits(address6):
        raise ValueError("address6 must be 6 ASCII digits (GB/T 2260 code)")
    if not 0 <= seq3 <= 999:
        raise ValueError("seq3 must be in 0..999")
    # Format fields by hand: strftime("%Y") does not zero-pad years < 1000 on glibc.
    first17 = f"{address6}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq3:03d}"
    return first17 + resident_id_check_char(first17)


# --- unified social credit code (GB 32100-2015) ----------------------------------------------

USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z; values 0..30
_USCC_VALUE: Final = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS: Final = tuple(pow(3, i, 31) for i in range(17))
# GB 11714 organisation code: digits keep their value, letters A..Z are 10..35 (full Latin
# alphabet - it predates the USCC alphabet, which is a subset of it).
_ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUE: Final = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character (position 18) for the first 17 characters."""
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise ValueError("USCC_CHARS: expected 17 characters from the USCC alphabet")
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _org_code_check_char(org8: str) -> str:
    """GB 11714 check character for the 8-character organisation code body."""
    if len(org8) != 8 or any(c not in _ORG_VALUE for c in org8):
        raise ValueError("USCC_CHARS: organisation code body must be 8 characters 0-9/A-Z")
    total = sum(_ORG_VALUE[c] * w for c, w in zip(org8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def validate_uscc(value: str) -> str | None:
    """``None`` if ``value`` is a valid unified social credit code, else a reason code.

    Codes: ``USCC_LENGTH``, ``USCC_CHARS``, ``USCC_CHECKSUM``, ``USCC_ORG_CHECKSUM``.
    """
    if len(value) != 18:
        return "USCC_LENGTH"
    if any(c not in _USCC_VALUE for c in value):
        return "USCC_CHARS"
    # The outer check covers every position, so a typo anywhere - including inside the
    # organisation code - is reported as USCC_CHECKSUM. USCC_ORG_CHECKSUM is left for codes
    # whose outer check was computed over a bad organisation code, i.e. fabricated or
    # produced by a broken generator. Both published valid vectors in identifiers.md pass
    # the embedded check (M000100Y -> 4, 70846113 -> 6), so enforcing it rejects no vector.
    if uscc_check_char(value[:17]) != value[17]:
        return "USCC_CHECKSUM"
    if _org_code_check_char(value[8:16]) != value[16]:
        return "USCC_ORG_CHECKSUM"
    return None


def make_uscc(registering: str, entity: str, region6: str, org8: str) -> str:
    """Build a valid code from its parts, computing positions 17 and 18 (demo data)."""
    if len(registering) != 1 or len(entity) != 1:
        raise ValueError("registering authority and entity type are one character each")
    if len(region6) != 6 or not _is_ascii_digits(region6):
        raise ValueError("region6 must be 6 ASCII digits (GB/T 2260 code)")
    if len(org8) != 8 or any(c not in _USCC_VALUE for c in org8):
        raise ValueError("org8 must be 8 characters from the USCC alphabet")
    first17 = registering + entity + region6 + org8 + _org_code_check_char(org8)
    return first17 + uscc_check_char(first17)  # also rejects bad registering/entity chars


# --- mobile numbers ---------------------------------------------------------------------------

# Carrier segments change (192, 196 ...), so only the shape is checked. fullmatch rather
# than "$", which would also accept a trailing newline; ASCII so \d is 0-9 only.
_MOBILE_RE: Final = re.compile(r"(?:\+?86)?1[3-9]\d{9}", re.ASCII)
_MOBILE_SEPARATORS: Final = re.compile(r"[\s\-]")


def validate_mobile(value: str) -> str | None:
    """``None`` for a mainland mobile (optionally ``86``/``+86``-prefixed), else a code."""
    return None if _MOBILE_RE.fullmatch(value) else "MOBILE_FORMAT"


def normalise_mobile(value: str) -> str:
    """E.164 form ``+861xxxxxxxxxx``; blanks and hyphens are dropped first."""
    cleaned = _MOBILE_SEPARATORS.sub("", value)
    if validate_mobile(cleaned) is not None:
        raise ValueError("MOBILE_FORMAT: not a mainland mobile number (1[3-9] + 9 digits)")
    return "+86" + cleaned[-11:]


# --- bank cards -------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Luhn (ISO/IEC 7812-1) check over ASCII digits; ``False`` for anything else."""
    if not _is_ascii_digits(digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def validate_bank_card(value: str) -> str | None:
    """``None`` for 16-19 digits passing Luhn; ``CARD_FORMAT`` or ``CARD_CHECKSUM``."""
    if not 16 <= len(value) <= 19 or not _is_ascii_digits(value):
        return "CARD_FORMAT"
    return None if luhn_valid(value) else "CARD_CHECKSUM"


# --- securities accounts and practitioner numbers -------------------------------------------

# Shanghai: A = individual, B/D/F = institutional and special-purpose accounts.
_SH_ACCOUNT_RE: Final = re.compile(r"[ABDF]\d{9}", re.ASCII)
_SZ_ACCOUNT_RE: Final = re.compile(r"\d{10}", re.ASCII)
# SAC 执业注册编号: category letter (S = securities, ...) + 13 digits, e.g. S0010120080012.
_SAC_RE: Final = re.compile(r"[A-Z]\d{13}", re.ASCII)


def validate_sh_account(value: str) -> str | None:
    """``None`` for a Shanghai securities account, else ``SH_ACCOUNT_FORMAT``."""
    return None if _SH_ACCOUNT_RE.fullmatch(value) else "SH_ACCOUNT_FORMAT"


def validate_sz_account(value: str) -> str | None:
    """``None`` for a Shenzhen securities account (10 digits), else ``SZ_ACCOUNT_FORMAT``."""
    return None if _SZ_ACCOUNT_RE.fullmatch(value) else "SZ_ACCOUNT_FORMAT"


def validate_sac_number(value: str) -> str | None:
    """``None`` for an SAC practitioner registration number, else ``SAC_FORMAT``."""
    return None if _SAC_RE.fullmatch(value) else "SAC_FORMAT"


# Named validators for table contracts ("validator: resident_id"); each returns a reason code.
# validate_resident_id fits the one-argument shape because ``today`` is keyword-only.
VALIDATORS: Final[dict[str, Callable[[str], str | None]]] = {
    "resident_id": validate_resident_id,
    "uscc": validate_uscc,
    "mobile": validate_mobile,
    "bank_card": validate_bank_card,
    "sh_account": validate_sh_account,
    "sz_account": validate_sz_account,
    "sac_number": validate_sac_number,
}

"""JSON Lines records: which lines are flat JSON objects, and which file is no JSON Lines at all.

Values stay text, as a CSV's do, so the contract's checks see what the file holds.
"""

from __future__ import annotations

import json


def json_record(text: str) -> tuple[str | None, str, dict[str, str | None] | None]:
    """(reason, detail, None) for a line that is no flat JSON object, else (None, '', row)."""
    try:
        # Numbers stay text: a float would round 12345678901234567.89 before the
        # contract's decimal check ever saw it.
        obj = json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as exc:
        return "row:JSON_SYNTAX", f"{exc.msg} at char {exc.pos}", None
    if not isinstance(obj, dict):
        return "row:JSON_NOT_OBJECT", "", None
    if any(isinstance(v, dict | list) for v in obj.values()):
        return "row:JSON_NESTED_VALUE", "", None
    row = {k: _jtext(v) for k, v in obj.items()}
    # "\ud800" is valid JSON but no text: Arrow and the databases hold UTF-8 only.
    if any(_lone_surrogate(s) for s in (*row, *row.values()) if s is not None):
        return "row:JSON_LONE_SURROGATE", "", None
    return None, "", row


def _lone_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

def json_array_document(first: str, last: str, records: int) -> bool:
    """The file is one JSON array (of objects), not JSON Lines: refuse it whole.

    Decided on the shape of the whole file, not on one line, so a broken first line such as
    ``[1, 2`` stays a bad row like anywhere else: the first line opens an array and the last
    closes one, and either the array is on one line and holds an object, or it is spread over
    several lines, whose first and last lines are then no JSON on their own.
    """
    if not (first.lstrip().startswith("[") and last.rstrip().endswith("]")):
        return False
    if records == 1:
        try:
            value = json.loads(first)
        except json.JSONDecodeError:
            return False
        return isinstance(value, list) and any(isinstance(v, dict) for v in value)
    return not _parses(first) and not _parses(last)


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True

def _jtext(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)

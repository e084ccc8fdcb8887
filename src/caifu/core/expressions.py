"""Boolean expressions over profile features and tags — the language of rule tags and segments.

One grammar serves both, so an operations analyst writes the same thing in a tag definition
and in a segment::

    days_since_last_trade >= 180 and aum > 0
    tag:high_net_worth and not tag:dormant
    (channel in ('wecom', 'app') or fund_value_equity > 100000) and c_level >= 'C4'
    last_login_at is not null 且 非 tag:沉睡客户

Grammar (case-insensitive keywords; 且/或/非 are accepted for and/or/not)::

    expr       := or
    or         := and ( ("or" | "或") and )*
    and        := not ( ("and" | "且") not )*
    not        := ("not" | "非") not | atom
    atom       := "(" expr ")" | "tag:" NAME | comparison | NAME      (a bool feature)
    comparison := operand OP operand                OP: = == != <> < <= > >=
                | operand "is" ["not"] "null"
                | operand ["not"] "in" "(" literal ("," literal)* ")"
                | operand ["not"] "between" literal "and" literal
    operand    := NAME | literal
    literal    := NUMBER | 'string' | "string" | true | false | date '2026-01-31'

NULL semantics are SQL's except that a comparison with a missing value is *false*, never
unknown: ``not (x > 5)`` holds for a customer with no ``x``. Segments must not lose customers
to three-valued logic silently, so the compiler (``pipelines.expressions``) coalesces every
comparison to false.

This module parses and validates; it does not evaluate. ``parse`` raises ``ExpressionError``
naming the column of the problem; ``validate`` checks names and types against the features and
tags that exist and suggests the closest name for a typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal as Lit

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import VisitError

from caifu.core.errors import ConfigError

Kind = Lit["string", "int", "decimal", "float", "date", "timestamp", "bool"]
NUMERIC = frozenset({"int", "decimal", "float"})


class ExpressionError(ConfigError):
    """An expression does not parse, or names a feature or tag that does not exist."""

    code = "invalid.expression"

    def __init__(self, message: str, *, text: str, column: int | None = None) -> None:
        self.text = text
        self.column = column
        where = f" at column {column}" if column is not None else ""
        pointer = ""
        if column is not None:
            pointer = f"\n    {text}\n    {' ' * (column - 1)}^"
        super().__init__(f"expression{where}: {message}{pointer}")


# --- the tree -------------------------------------------------------------------------------

Value = int | Decimal | str | bool | date


@dataclass(frozen=True)
class Field:
    name: str
    column: int


@dataclass(frozen=True)
class Const:
    value: Value


Operand = Field | Const


@dataclass(frozen=True)
class Compare:
    left: Operand
    op: str  # one of = != < <= > >=
    right: Operand


@dataclass(frozen=True)
class IsNull:
    operand: Operand
    negated: bool


@dataclass(frozen=True)
class In:
    operand: Operand
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class Between:
    operand: Operand
    low: Value
    high: Value
    negated: bool


@dataclass(frozen=True)
class TagRef:
    tag: str
    column: int


@dataclass(frozen=True)
class BoolField:
    field: Field


@dataclass(frozen=True)
class Not:
    item: Expr


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


Expr = Compare | IsNull | In | Between | TagRef | BoolField | Not | And | Or

_GRAMMAR = r"""
?start: or_
?or_: and_ (OR and_)*
?and_: not_ (AND not_)*
?not_: NOT not_ -> negate
     | atom
?atom: "(" or_ ")"
     | TAG_PREFIX TAGNAME               -> tag
     | operand OP operand               -> compare
     | operand IS NULL                  -> is_null
     | operand IS NOT NULL              -> is_not_null
     | operand IN "(" literal ("," literal)* ")"        -> in_
     | operand NOT IN "(" literal ("," literal)* ")"    -> not_in
     | operand BETWEEN literal AND literal              -> between
     | operand NOT BETWEEN literal AND literal          -> not_between
     | NAME                             -> bool_field
?operand: NAME -> field
        | literal
?literal: NUMBER -> number
        | STRING -> string
        | TRUE -> true
        | FALSE -> false
        | DATE STRING -> date

OR: /or(?![A-Za-z0-9_])/i | "或"
AND: /and(?![A-Za-z0-9_])/i | "且"
NOT: /not(?![A-Za-z0-9_])/i | "非"
IS: /is(?![A-Za-z0-9_])/i
NULL: /null(?![A-Za-z0-9_])/i
IN: /in(?![A-Za-z0-9_])/i
BETWEEN: /between(?![A-Za-z0-9_])/i
TRUE.2: /true(?![A-Za-z0-9_])/i
FALSE.2: /false(?![A-Za-z0-9_])/i
DATE.2: /date(?![A-Za-z0-9_])/i
TAG_PREFIX.3: /tag:/i
TAGNAME: /[^\s()'",:<>=!且或非]+/
OP: "==" | "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
NAME.0: /(?!(?:and|or|not|is|null|in|between|true|false)(?![A-Za-z0-9_]))[A-Za-z_][A-Za-z0-9_]*/i
NUMBER: /-?\d+(\.\d+)?/
STRING: /'[^']*'/ | /"[^"]*"/
WS: /[ \t\f\r\n]+/
%ignore WS
"""

_FULL_WIDTH = str.maketrans({"\u3000": " ", "（": "(", "）": ")", "，": ",", "＝": "=",
                             "＜": "<", "＞": ">", "！": "!", "‘": "'", "’": "'", "“": '"',
                             "”": '"'})

_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _unquote(token: Token) -> str:
    return str(token)[1:-1]


@v_args(inline=True)
class _Build(Transformer[Token, Expr]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    # operands and literals
    def field(self, name: Token) -> Field:
        return Field(str(name), name.column or 0)

    def number(self, tok: Token) -> Const:
        s = str(tok)
        return Const(Decimal(s) if "." in s else int(s))

    def string(self, tok: Token) -> Const:
        return Const(_unquote(tok))

    def true(self, _: Token) -> Const:
        return Const(True)

    def false(self, _: Token) -> Const:
        return Const(False)

    def date(self, _: Token, tok: Token) -> Const:
        try:
            return Const(date.fromisoformat(_unquote(tok)))
        except ValueError:
            raise ExpressionError(f"{tok} is not a date (write date '2026-01-31')",
                                  text=self.text, column=tok.column) from None

    # predicates
    def tag(self, _: Token, name: Token) -> TagRef:
        return TagRef(str(name), name.column or 0)

    def compare(self, left: Operand, op: Token, right: Operand) -> Compare:
        normal = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return Compare(left, normal, right)

    def is_null(self, operand: Operand, *_: Token) -> IsNull:
        return IsNull(operand, negated=False)

    def is_not_null(self, operand: Operand, *_: Token) -> IsNull:
        return IsNull(operand, negated=True)

    def _values(self, items: tuple[object, ...]) -> tuple[Value, ...]:
        return tuple(i.value for i in items if isinstance(i, Const))

    def in_(self, operand: Operand, _: Token, *values: object) -> In:
        return In(operand, self._values(values), negated=False)

    def not_in(self, operand: Operand, _n: Token, _i: Token, *values: object) -> In:
        return In(operand, self._values(values), negated=True)

    def between(self, operand: Operand, _b: Token, low: Const, _a: Token, high: Const) -> Between:
        return Between(operand, low.value, high.value, negated=False)

    def not_between(self, operand: Operand, _n: Token, _b: Token, low: Const, _a: Token,
                    high: Const) -> Between:
        return Between(operand, low.value, high.value, negated=True)

    def bool_field(self, name: Token) -> BoolField:
        return BoolField(Field(str(name), name.column or 0))

    # connectives
    def negate(self, _: Token, item: Expr) -> Not:
        return Not(item)

    def and_(self, *items: object) -> And:
        return And(tuple(i for i in items if not isinstance(i, Token)))  # type: ignore[misc]

    def or_(self, *items: object) -> Or:
        return Or(tuple(i for i in items if not isinstance(i, Token)))  # type: ignore[misc]


def parse(text: str) -> Expr:
    """Parse an expression; ``ExpressionError`` says where and what was expected."""
    if not text or not text.strip():
        raise ExpressionError("is empty", text=text or "")
    if len(text) > 4000:
        raise ExpressionError(f"is {len(text)} characters long; the limit is 4000", text=text[:60])
    # full-width punctuation typed on a Chinese keyboard, one character for one: columns hold
    text = text.translate(_FULL_WIDTH)
    try:
        tree = _PARSER.parse(text)
    except RecursionError:
        raise ExpressionError("is nested too deeply", text=text[:60]) from None
    except UnexpectedInput as exc:
        expected = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
        at_end = getattr(getattr(exc, "token", None), "type", None) == "$END"
        pos = exc.pos_in_stream
        got = "" if at_end or pos is None else text[pos:pos + 12]
        hint = f"; expected one of {', '.join(_readable(expected))}" if expected else ""
        what = f"unexpected {got!r}" if got else "unexpected end of expression"
        column = len(text.rstrip()) + 1 if at_end else exc.column
        raise ExpressionError(f"{what}{hint}", text=text, column=column) from None
    try:
        result = _Build(text).transform(tree)
    except VisitError as exc:  # lark wraps what the builder raises
        if isinstance(exc.orig_exc, ExpressionError):
            raise exc.orig_exc from None
        raise
    except RecursionError:
        raise ExpressionError("is nested too deeply", text=text[:60]) from None
    if isinstance(result, Field):  # a bare NAME is a bool feature
        return BoolField(result)
    if isinstance(result, Const):
        raise ExpressionError("is a constant, not a condition", text=text, column=1)
    return result


_TOKEN_NAMES = {"OP": "a comparison (=, !=, <, <=, >, >=)", "NAME": "a feature name",
                "NUMBER": "a number", "STRING": "a 'string'", "LPAR": "(", "RPAR": ")",
                "TAG_PREFIX": "tag:", "TAGNAME": "a tag id", "COMMA": ",", "AND": "and",
                "OR": "or", "NOT": "not", "IS": "is", "NULL": "null", "IN": "in",
                "BETWEEN": "between", "TRUE": "true", "FALSE": "false", "DATE": "date '…'",
                "$END": "end of expression"}


def _readable(names: list[str]) -> list[str]:
    return sorted({_TOKEN_NAMES.get(n, n) for n in names})


# --- validation -----------------------------------------------------------------------------


def walk(expr: Expr) -> Iterator[Expr]:
    yield expr
    if isinstance(expr, Not):
        yield from walk(expr.item)
    elif isinstance(expr, And | Or):
        for item in expr.items:
            yield from walk(item)


def tags_used(expr: Expr) -> set[str]:
    return {e.tag for e in walk(expr) if isinstance(e, TagRef)}


def fields_used(expr: Expr) -> set[str]:
    names: set[str] = set()
    for e in walk(expr):
        if isinstance(e, BoolField):
            names.add(e.field.name)
        elif isinstance(e, Compare):
            names.update(o.name for o in (e.left, e.right) if isinstance(o, Field))
        elif isinstance(e, IsNull | In | Between) and isinstance(e.operand, Field):
            names.add(e.operand.name)
    return names


def _value_kind(value: Value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, date):
        return "date"
    return "string"


def _kind_family(kind: str) -> str:
    if kind in NUMERIC:
        return "number"
    return kind  # timestamps are their own family: they are UTC, dates are local


def validate(expr: Expr, text: str, fields: Mapping[str, str], tags: set[str] | None) -> None:
    """Check that every feature and tag exists and that compared kinds agree.

    ``fields`` maps feature name → kind; ``tags`` is the set of known tag ids (None: tags are
    not allowed here, as in a rule tag, which must not depend on other tags' order).
    """

    def field_kind(f: Field) -> str:
        if f.name not in fields:
            close = difflib.get_close_matches(f.name, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ExpressionError(f"unknown feature {f.name!r}{hint}", text=text, column=f.column)
        return _kind_family(fields[f.name])

    def operand_kind(o: Operand) -> str:
        return field_kind(o) if isinstance(o, Field) else _value_kind(o.value)

    def agree(left: str, right: Operand | Value, column: int, what: str) -> None:
        """``left`` is a feature's kind; ``right`` the other side."""
        if isinstance(right, Field):
            right_kind = field_kind(right)
        else:
            value = right.value if isinstance(right, Const) else right
            right_kind = _value_kind(value)
            if left == "date" and right_kind == "string":
                try:  # '2026-01-31' against a date feature is accepted, if it is a date
                    date.fromisoformat(str(value))
                except ValueError:
                    raise ExpressionError(f"{what}: {value!r} is not a date (YYYY-MM-DD)",
                                          text=text, column=column) from None
                return
        if left == "timestamp" or right_kind == "timestamp":
            if left != right_kind:
                raise ExpressionError(f"{what}: a timestamp (UTC) compares only with another "
                                      "timestamp; use a days-since feature instead",
                                      text=text, column=column)
        if left != right_kind:
            raise ExpressionError(f"{what}: cannot compare {left} with {right_kind}",
                                  text=text, column=column)

    for e in walk(expr):
        if isinstance(e, TagRef):
            if tags is None:
                raise ExpressionError("a rule tag may not refer to other tags",
                                      text=text, column=e.column)
            if e.tag not in tags:
                close = difflib.get_close_matches(e.tag, sorted(tags), n=1)
                hint = f"; did you mean tag:{close[0]}?" if close else ""
                raise ExpressionError(f"unknown tag {e.tag!r}{hint}", text=text, column=e.column)
        elif isinstance(e, BoolField):
            if field_kind(e.field) != "bool":
                raise ExpressionError(f"{e.field.name!r} is not a yes/no feature; compare it "
                                      f"(e.g. {e.field.name} > 0)", text=text, column=e.field.column)
        elif isinstance(e, Compare):
            col = next((o.column for o in (e.left, e.right) if isinstance(o, Field)), 1)
            if not any(isinstance(o, Field) for o in (e.left, e.right)):
                raise ExpressionError("compares two constants", text=text, column=col)
            feature, other = (e.left, e.right) if isinstance(e.left, Field) else (e.right, e.left)
            assert isinstance(feature, Field)
            left = field_kind(feature)
            agree(left, other, col, f"{_name(e.left)} {e.op} {_name(e.right)}")
            if left == "bool" and e.op not in ("=", "!="):
                raise ExpressionError(f"{e.op} does not apply to yes/no values",
                                      text=text, column=col)
        elif isinstance(e, IsNull):
            operand_kind(e.operand)
        elif isinstance(e, In | Between):
            kind = operand_kind(e.operand)
            col = e.operand.column if isinstance(e.operand, Field) else 1
            values = e.values if isinstance(e, In) else (e.low, e.high)
            for v in values:
                agree(kind, v, col, _name(e.operand))


def _name(o: Operand) -> str:
    return o.name if isinstance(o, Field) else repr(o.value)


def compile_checked(text: str, fields: Mapping[str, str], tags: set[str] | None) -> Expr:
    """Parse and validate in one step."""
    expr = parse(text)
    validate(expr, text, fields, tags)
    return expr

"""Table contracts: the one definition of every table caifu stores.

A contract says, per column: type, whether it is required, allowed values or range, format
check, reference to another table, Chinese description, JR/T 0158-2018 data level and PII
flag. A *set* column (``members``) holds several of its allowed values in one field, as a
questionnaire's multiple-choice answer does: ``members_of`` reads it. Everything else is generated from it: the SoR models and migrations, the lake schemas,
the ingest checks (``pipelines.staging``) and ``docs/data-model.md``.

Contracts are pure data: no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from caifu.core.errors import ConfigError, ContractError

Kind = Literal["string", "int", "decimal", "float", "date", "timestamp", "bool"]
# How an identifier is normalised before it is checked and stored (``caifu.core.ids.
# normalise_code``): "nfkc" folds full-width and other compatibility forms (１２３ → 123);
# "nfkc_upper" then upper-cases, for codes whose letters are upper case by definition.
Normalise = Literal["nfkc", "nfkc_upper"]
Store = Literal["sor", "lake"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    desc: str
    level: int = 2
    pii: bool = False
    required: bool = False
    enum: tuple[str, ...] | None = None
    min: Decimal | int | None = None
    max: Decimal | int | None = None
    pattern: str | None = None
    check: str | None = None  # a validator name from caifu.core.ids.VALIDATORS
    # (validator, column, value): apply the validator only where column == value
    checks_when: tuple[tuple[str, str, str], ...] = ()
    ref: str | None = None  # "table.column"
    not_future: bool = False
    max_length: int | None = None
    precision: int = 18
    scale: int = 2
    mask: str | None = None  # a caifu.core.levels mask kind, for level >= 3
    normalise: Normalise | None = None
    # a set column: any of these, separated by SEPARATORS, stored as those present in this
    # order joined by ","; ``aliases`` are other spellings of a member (a source's Chinese
    # names), read as that member
    members: tuple[str, ...] | None = None
    aliases: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.members is None:
            if self.aliases:
                raise ContractError(f"{self.name}: aliases need members")
            return
        if self.kind != "string" or self.enum is not None:
            raise ContractError(f"{self.name}: a set column is a string column without enum")
        if any("," in m or m != m.lower() for m in self.members):
            raise ContractError(f"{self.name}: members are lower case, without ','")
        for alias, member in self.aliases:
            if member not in self.members or alias != alias.lower():
                raise ContractError(f"{self.name}: alias {alias!r} names no member, or has "
                                    "upper case")

    @property
    def spellings(self) -> dict[str, str]:
        """Every accepted (lower-case) spelling of a set column's members -> the member."""
        return {**{m: m for m in self.members or ()}, **dict(self.aliases)}

    @property
    def type_name(self) -> str:
        if self.kind == "decimal":
            return f"DECIMAL({self.precision},{self.scale})"
        if self.kind == "string" and self.max_length:
            return f"VARCHAR({self.max_length})"
        return {
            "string": "VARCHAR",
            "int": "BIGINT",
            "float": "DOUBLE",
            "date": "DATE",
            "timestamp": "TIMESTAMP",
            "bool": "BOOLEAN",
        }[self.kind]


# what separates the members of a set column's value: ASCII and full-width commas and
# semicolons, and the enumeration comma of Chinese text, each with any spaces (ASCII or
# full-width) around it; written so that Python, RE2 (DuckDB) and Java (Spark) read it alike
SPACES = " \u3000"
SEPARATORS = f"[{SPACES}]*[,;，；、][{SPACES}]*"


def members_of(col: Column, text: str) -> str | None:
    """A set column's stored form of ``text`` (its members in contract order, joined by ","),
    or None when a part of it names no member — the row's ``<column>:ENUM``.

    ``"权益、现金管理"`` → ``"cash,equity"``; case is ignored, a repeated member counts once,
    an empty part (``"cash,,equity"``) is no member. ``pipelines.parsing`` is the same rule
    as an Ibis expression."""
    assert col.members is not None, col.name
    spellings = col.spellings
    parts = re.split(SEPARATORS, text.strip(SPACES).lower())
    if any(p not in spellings for p in parts):
        return None
    present = {spellings[p] for p in parts}
    return ",".join(m for m in col.members if m in present)


@dataclass(frozen=True)
class Table:
    name: str
    desc: str
    store: Store
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    ingestible: bool = True
    notes: str = ""
    # (column, other, code): the row ``column`` refers to has this row's value of ``other``,
    # else the row is rejected as ``column:code`` (a trade's fund account is its customer's)
    agrees: tuple[tuple[str, str, str], ...] = ()
    _by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Column] = {}
        for col in self.columns:
            if col.name in by_name:
                raise ContractError(f"{self.name}: column {col.name!r} declared twice")
            by_name[col.name] = col
        for k in self.key:
            if k not in by_name:
                raise ContractError(f"{self.name}: key column {k!r} is not a column")
            if not by_name[k].required:
                raise ContractError(f"{self.name}: key column {k!r} must be required")
        object.__setattr__(self, "_by_name", by_name)

    def __getitem__(self, name: str) -> Column:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def refs(self) -> Iterator[tuple[Column, str, str]]:
        """(column, referenced table, referenced column) for every reference."""
        for col in self.columns:
            if col.ref:
                table, _, column = col.ref.partition(".")
                yield col, table, column


class Registry:
    """All contracts, in dependency order (a table comes after the tables it refers to)."""

    def __init__(self, tables: Iterable[Table]) -> None:
        self._tables = {t.name: t for t in tables}
        for t in self._tables.values():
            for col, ref_table, ref_col in t.refs:
                target = self._tables.get(ref_table)
                if target is None or ref_col not in target:
                    raise ContractError(f"{t.name}.{col.name}: reference {col.ref!r} does not exist")
                if target.key != (ref_col,):
                    raise ContractError(f"{t.name}.{col.name}: {col.ref!r} is not a one-column key")
                if col.normalise != target[ref_col].normalise:
                    # else a full-width reference would never find the row it names
                    raise ContractError(f"{t.name}.{col.name}: normalised unlike {col.ref!r}")
        for t in self._tables.values():
            refs = {col.name: ref_table for col, ref_table, _ in t.refs}
            for column, other, _code in t.agrees:
                target = self._tables.get(refs.get(column, ""))
                if target is None or other not in t or other not in target:
                    raise ContractError(f"{t.name}: {column!r} must refer to a table that, "
                                        f"like {t.name}, has {other!r}")
        self._order = self._topological()

    def _topological(self) -> list[str]:
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in seen:
                return
            if name in path:
                raise ContractError(f"reference cycle: {' -> '.join((*path, name))}")
            for _, ref_table, _ in self._tables[name].refs:
                if ref_table != name:
                    visit(ref_table, (*path, name))
            seen.add(name)
            order.append(name)

        for name in self._tables:
            visit(name, ())
        return order

    def __getitem__(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            known = ", ".join(sorted(self._tables))
            raise ConfigError(f"unknown table {name!r}; known tables: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tables

    def __iter__(self) -> Iterator[Table]:
        return (self._tables[n] for n in self._order)

    def rank(self, name: str) -> int:
        """Position in dependency order: load lower ranks first."""
        return self._order.index(name)


def registry() -> Registry:
    from caifu.data.contracts.tables import TABLES

    return Registry(TABLES)

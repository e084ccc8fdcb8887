"""The data dictionary (``services/metrics/dictionary``; ``docs/data-dictionary.md``)."""

from __future__ import annotations

from pydantic import Field

from caifu.api.schemas.common import Schema


class Text(Schema):
    zh: str
    en: str


class DictionaryColumn(Schema):
    name: str
    type: str = Field(description="contract kind: string, int, decimal, float, date, "
                                  "timestamp, bool")
    level: int = Field(description="JR/T 0158-2018 data level, 1 (低) … 4 (极高)")
    pii: bool
    description: Text
    metrics: list[str] = Field(description="metrics whose compiled SQL reads the column")
    features: list[str] = Field(description="profile features that read it")
    tags: list[str] = Field(description="rule tags that read it (through features)")


class DictionaryTable(Schema):
    name: str = Field(description="a contract table, or sor:<table> for an operational table")
    store: str
    key: list[str]
    owner: str
    description: Text
    columns: list[DictionaryColumn]


class DataDictionary(Schema):
    catalog_version: str
    tenant: str | None
    default_owner: str
    tables: list[DictionaryTable]

"""Arrow types of contract columns: the one mapping used by the lake and by SoR reads."""

from __future__ import annotations

import pyarrow as pa

from caifu.data.contracts import Column, Table


def arrow_type(col: Column) -> pa.DataType:
    match col.kind:
        case "string":
            return pa.string()
        case "int":
            return pa.int64()
        case "decimal":
            return pa.decimal128(col.precision, col.scale)
        case "float":
            return pa.float64()
        case "date":
            return pa.date32()
        case "timestamp":
            return pa.timestamp("us")
        case "bool":
            return pa.bool_()
    raise AssertionError(col.kind)


def contract_schema(contract: Table) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=not c.required) for c in contract.columns]
    )

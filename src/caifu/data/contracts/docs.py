"""Render ``docs/data-model.md`` from the contracts (a test keeps the file in step)."""

from __future__ import annotations

from caifu.data.contracts import Column, Registry


def _rules(c: Column) -> str:
    parts: list[str] = []
    if c.normalise:
        parts.append("NFKC (full-width → ASCII)"
                     + (", upper case" if c.normalise == "nfkc_upper" else ""))
    if c.enum:
        parts.append("one of " + ", ".join(f"`{v}`" for v in c.enum))
    if c.members:
        names: dict[str, list[str]] = {}
        for alias, member in c.aliases:
            names.setdefault(member, []).append(alias)
        parts.append("any of " + ", ".join(
            f"`{m}`" + (f" ({'/'.join(names[m])})" if m in names else "") for m in c.members)
            + ", separated by `,` `;` `，` `；` `、`; stored as codes in this order")
    if c.min is not None:
        parts.append(f"≥ {c.min}")
    if c.max is not None:
        parts.append(f"≤ {c.max}")
    if c.pattern:
        parts.append(f"matches `{c.pattern}`")
    if c.check:
        parts.append(f"check `{c.check}`")
    for name, other, value in c.checks_when:
        parts.append(f"check `{name}` when {other} = `{value}`")
    if c.ref:
        parts.append(f"→ `{c.ref}`")
    if c.not_future:
        parts.append("not in the future")
    return "; ".join(parts)


def render(contracts: Registry) -> str:
    out = [
        "# Data model",
        "",
        "Generated from `src/caifu/data/contracts/tables.py` by `caifu docs`; do not edit by hand.",
        "",
        "Every system-of-record (SoR) table also has `tenant_id` as the first primary-key column;",
        "every lake table lives under `lake/<tenant>/<table>/` and carries `_batch_id`, the ingest",
        "batch that wrote the row. Levels are JR/T 0158-2018 data levels (1 低 … 4 极高); level ≥ 3",
        "values are masked by default. Money is `DECIMAL(18,2)`; timestamps are naive UTC.",
        "",
        "Accepted input forms: dates `YYYY-MM-DD` or `YYYYMMDD`; timestamps",
        "`YYYY-MM-DD HH:MM:SS[.ffffff]`, ISO with `T`, or `YYYYMMDDHHMMSS`; booleans",
        "`true/false/1/0/y/n/yes/no/t/f/是/否`; decimals with at most the column's scale.",
        "Text that is only whitespace (tabs, full-width spaces U+3000, ...) is missing, like an",
        "empty field. Identifier columns marked NFKC are normalised before they are checked and",
        "stored: full-width `１０００００００４２` is `1000000042`; those marked upper case also",
        "upper-case letters (a resident ID's check character `x` is stored as `X`).",
        "",
        "| table | store | key | description |",
        "|---|---|---|---|",
    ]
    for t in contracts:
        out.append(f"| [`{t.name}`](#{t.name}) | {t.store} | {', '.join(t.key)} | {t.desc} |")
    for t in contracts:
        out += ["", f"## {t.name}", "", f"{t.desc} — stored in the **{t.store}**"
                + ("" if t.ingestible else " (not ingested from files)")
                + f"; key ({', '.join(t.key)}).", ""]
        if t.notes:
            out += [t.notes, ""]
        for column, other, code in t.agrees:
            out += [f"The row `{column}` refers to must have this row's `{other}`, else "
                    f"`{column}:{code}`.", ""]
        out += ["| column | type | required | level | PII | 说明 | rules |",
                "|---|---|---|---|---|---|---|"]
        for c in t.columns:
            out.append(
                f"| `{c.name}` | {c.type_name} | {'yes' if c.required else ''} | {c.level} | "
                f"{'yes' if c.pii else ''} | {c.desc} | {_rules(c)} |"
            )
    return "\n".join(out) + "\n"

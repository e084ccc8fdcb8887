"""docs/profile-features.md, generated from ``pipelines.profile`` by ``caifu docs``."""

from __future__ import annotations

from caifu.pipelines import profile

KIND_TYPES = {"string": "VARCHAR", "int": "BIGINT", "decimal": "DECIMAL(18,2)",
              "float": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP (UTC)",
              "bool": "BOOLEAN"}


def render() -> str:
    doc = (profile.__doc__ or "").strip().split("\n\n", 1)[1]
    th = profile.RFM_THRESHOLDS
    out = [
        "# Profile features",
        "",
        "Generated from `src/caifu/pipelines/profile.py` by `caifu docs`; do not edit by hand.",
        "",
        "One row per customer who had opened an account by the profile date (`as_of`), computed",
        "by `caifu build` on DuckDB or Spark with the same Ibis definition, stored as one Delta",
        "snapshot per date in the lake table `profile_features` and, for the newest date, as",
        "serving rows in the system of record. Rule tags and segments refer to these names.",
        "",
        "## Definitions",
        "",
        doc,
        "",
        "RFM thresholds (score 5, 4, 3, 2; anything else scores 1):",
        "",
        f"- recency: days since the last trade at most {th['recency_max_days']} → 5, 4, 3, 2; "
        "never traded → 1",
        f"- frequency: trades in 365 days at least {th['frequency_min_trades_365d']}",
        f"- monetary: traded amount in 365 days at least {th['monetary_min_amount_365d']} yuan",
        "",
        "## Features",
        "",
        "| feature | type | 说明 |",
        "|---|---|---|",
    ]
    for f in profile.FEATURES:
        out.append(f"| `{f.name}` | {KIND_TYPES[f.kind]} | {f.desc} |")
    return "\n".join(out) + "\n"

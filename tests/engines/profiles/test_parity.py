"""Engine parity on the demo broker: profiles, rule tags and segments agree with DuckDB.

The reference is the DuckDB result; on the ``duckdb`` parameter the test checks that a second
run gives the same answer, on ``spark`` that Spark gives DuckDB's answer. Money, counts,
dates and strings must be identical; floats (ratios, average-price P&L) may differ in the last
bits because engines sum in different orders.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from caifu.adapters.engines.session import DuckDBSession, EngineSession
from caifu.core import expressions as ex
from caifu.pipelines.profile import FEATURE_KINDS, FEATURES, profile_features
from caifu.pipelines.segments import segment_members
from caifu.pipelines.tags import rule_tag_hits
from caifu.services.container import Container
from caifu.services.profiles.build import Build
from caifu.services.profiles.tag_definitions import load_definitions
from caifu.settings import Settings
from tests.conftest import Broker

pytestmark = pytest.mark.slow  # a demo broker or a browser: `-m "not slow"` skips it

AS_OF = dt.date(2026, 10, 30)
SEGMENTS = {
    "rich_dormant": "tag:dormant and aum >= 100000",
    "anxious_fund_holders": "fund_value > 0 and (aum_trend_30d <= -0.05 or not tag:fund_heavy)",
    "two_tags": "(tag:dormant or tag:high_net_worth) and not tag:assessment_expired",
    "new_and_idle": "tenure_days < 365 and trades_90d = 0 and channel in ('app', 'wecom')",
}


@pytest.fixture(scope="module")
def demo_workspace(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Container]:
    # the session's small broker (600 customers, seed 3, as this module always used); a copy
    # of its workspace instead of an ingest of its own
    c = small_broker.copy(tmp_path_factory.mktemp("parity") / "ws",
                          Settings(duckdb_memory_limit="1GB"))
    yield c
    c.close()


def _run(c: Container, s: EngineSession) -> dict[str, Any]:
    inputs = Build(c).load_inputs(s, "acme")
    features = s.to_arrow(profile_features(inputs, AS_OF, 8)).sort_by("customer_id")
    definitions, _ = load_definitions(c, "acme")
    on_engine = s.from_arrow("parity_features", features)
    hits = rule_tag_hits(on_engine, definitions, AS_OF, 8)
    rule = sorted((h.customer_id, h.tag_id, repr(sorted(h.evidence["features"].items())))
                  for h in hits)
    tags = s.from_arrow("parity_tags", pa.table({
        "customer_id": [h.customer_id for h in hits], "tag_id": [h.tag_id for h in hits]}))
    members = {}
    for name, text in SEGMENTS.items():
        expr = ex.compile_checked(text, FEATURE_KINDS, {d.id for d in definitions})
        out = s.to_arrow(segment_members(on_engine, tags, expr))
        members[name] = sorted(out["customer_id"].to_pylist())
    return {"features": features, "rule": rule, "members": members}


@pytest.fixture(scope="module")
def reference(demo_workspace: Container, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Any]:
    s = DuckDBSession(tmp_path_factory.mktemp("ref"), "1GB", 2)
    try:
        return _run(demo_workspace, s)
    finally:
        s.close()


def _same(a: Any, b: Any, kind: str) -> bool:
    if a is None or b is None:
        return a is b
    if kind == "float":
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def test_engine_matches_duckdb(engine: EngineSession, demo_workspace: Container,
                               reference: dict[str, Any], tmp_path: Path) -> None:
    got = _run(demo_workspace, engine)
    ref = reference["features"]
    assert got["features"].num_rows == ref.num_rows > 500
    assert got["features"].schema == ref.schema
    for f in FEATURES:
        mine, theirs = got["features"][f.name].to_pylist(), ref[f.name].to_pylist()
        bad = [(i, x, y) for i, (x, y) in enumerate(zip(mine, theirs, strict=True))
               if not _same(x, y, f.kind)]
        assert not bad, (f.name, bad[:3])
    assert got["rule"] == reference["rule"]
    assert len(reference["rule"]) > 100
    assert got["members"] == reference["members"]
    assert all(reference["members"].values()), reference["members"]

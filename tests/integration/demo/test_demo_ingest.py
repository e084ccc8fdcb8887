"""The demo broker end to end: ingest quarantines exactly the rows the generator broke."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import ingest_quarantine
from caifu.data.demo import generate
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest, load_mapping

pytestmark = [pytest.mark.dialect, pytest.mark.slow]  # the demo broker through COPY and the upserts


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "exports"
    generate(out, customers=1500, seed=11)
    return out


def test_demo_ingest_quarantines_exactly_the_injected_rows(
    workspace: Container, demo_dir: Path
) -> None:
    truth = json.loads((demo_dir / "_ground_truth" / "injected_errors.json").read_text("utf-8"))
    results = Ingest(workspace).ingest("acme", [demo_dir])
    by_file = {r.path.name: r for r in results}
    assert set(by_file) == {p.name for p in demo_dir.iterdir()
                            if p.is_file() and p.suffix != ".yaml"}
    for r in results:
        assert r.balanced, r
        injected = sum(truth["files"].get(r.path.name, {}).values())
        assert r.quarantined == injected, (r.path.name, r.reasons)
        assert r.duplicates == truth["overlap_duplicates"].get(r.path.name, 0), r.path.name
        assert r.updated == 0

    # the quarantined rows are the injected rows, key by key
    mapping = load_mapping(demo_dir / "sources.yaml")
    with workspace.engine.connect() as conn:
        rows = conn.execute(select(ingest_quarantine.c.source_path, ingest_quarantine.c.raw_json)
                            .where(ingest_quarantine.c.tenant_id == "acme")).all()
    got: Counter[tuple[str, str]] = Counter()
    for source_path, raw_json in rows:
        name = Path(source_path).name
        spec = mapping.spec_for(Path(name), Ingest(workspace).contracts)
        inverse = {v: k for k, v in spec.columns.items()}
        raw = json.loads(raw_json)
        key_col = Ingest(workspace).contracts[spec.table].key[0]
        got[(name, str(raw[inverse.get(key_col, key_col)]))] += 1
    expected = Counter((r["file"], str(next(iter(r["key"].values())))) for r in truth["rows"]
                       if r["kind"] != "overlap_duplicate")  # those are duplicates, not rejects
    assert got == expected

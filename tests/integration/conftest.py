"""Fixtures shared by integration modules: one scored demo broker for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caifu.data.demo import generate
from caifu.services.container import Container
from caifu.services.ingest import Ingest
from caifu.services.scoring import Scoring, ScoringResult
from caifu.services.workspace import create_tenant, init_workspace
from caifu.settings import Settings


@pytest.fixture(scope="session")
def scored(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Container, ScoringResult, Path]]:
    """A 4,000-customer demo broker, ingested and scored (tenant ``acme``); its exports folder
    holds the ground truth. Tests may build on it but must not change its inputs."""
    out = tmp_path_factory.mktemp("scored-demo") / "exports"
    generate(out, customers=4000, seed=11)
    c = init_workspace(tmp_path_factory.mktemp("scored-ws") / "ws",
                       Settings(duckdb_memory_limit="2GB"))
    create_tenant(c, "acme", "甲乙证券")
    Ingest(c).ingest("acme", [out])
    result = Scoring(c).run("acme")
    yield c, result, out
    c.close()

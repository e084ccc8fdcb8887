"""One test body, every engine: the ``engine`` fixture runs a pipeline test on DuckDB and Spark.

Spark runs in local mode in the same process (one SparkSession for the whole test session,
started on first use); its tests are marked ``spark``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from caifu.adapters.engines.session import DuckDBSession, EngineSession, SparkSession

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def spark_session() -> Iterator[SparkSession]:
    problem = None
    if importlib.util.find_spec("pyspark") is None:
        problem = "the spark extra is not installed (pip install 'caifu[spark]')"
    elif shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        problem = "no Java runtime (Spark needs Java 17)"
    if problem:
        if IN_CI:
            pytest.fail(f"Spark tests must run in CI: {problem}")
        pytest.skip(reason=problem)
    s = SparkSession("local[2]")
    yield s
    s.spark.stop()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineSession]:
    if request.param == "duckdb":
        s: EngineSession = DuckDBSession(tmp_path, "1GB", 2)
        yield s
        s.close()
    else:
        s = request.getfixturevalue("spark_session")
        yield s
        s.close()

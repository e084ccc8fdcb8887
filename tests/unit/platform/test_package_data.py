"""Every data file under ``src/caifu`` ships in the wheel: pyproject's package-data names it.

An editable install reads the source tree, so a file left out of package-data works in
development and is missing on a broker's machine (the risk event model once was)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import caifu

SRC = Path(caifu.__file__).resolve().parent
PYPROJECT = SRC.parents[1] / "pyproject.toml"


def test_every_data_file_is_package_data() -> None:
    globs = tomllib.loads(PYPROJECT.read_text("utf-8"))["tool"]["setuptools"][
        "package-data"]["caifu"]
    files = [str(p.relative_to(SRC)) for p in SRC.rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert len(files) > 50
    # fnmatch's * crosses "/", setuptools' does not: compare the depth too
    missing = [f for f in files if not any(
        fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert missing == []

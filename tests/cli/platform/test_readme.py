"""The README's "Using it" commands run as written (with a smaller demo broker)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caifu.cli import app

README = Path(__file__).resolve().parents[3] / "README.md"


def _readme_commands() -> list[list[str]]:
    block = README.read_text(encoding="utf-8").split("## Using it", 1)[1].split("```")[1]
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("caifu "):
            commands.append(shlex.split(line)[1:])
    return commands


def test_readme_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _readme_commands()
    assert [c[0] for c in commands] == ["init", "tenant", "demo-data", "ingest", "ingest-log",
                                        "quarantine", "segment", "score", "build", "tags",
                                        "segment", "value", "lifecycle", "redemption", "report",
                                        "docs"]
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"COLUMNS": "200"})
    outputs = []
    for args in commands:
        args = [re.sub(r"^10000$", "400", a) for a in args]  # same command, smaller broker
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        outputs.append(result.output)
    assert "committed" in outputs[4] and "ID_CHECKSUM" in outputs[5]
    assert "saved" in outputs[6]
    assert "backtest" in outputs[7]  # score: the backtest table (or why a target has none)
    assert "沉睡客户" in outputs[8] and "leads" in outputs[8]  # build: tags and segment sizes
    assert "interest_chinext" in outputs[9]
    members = int(re.search(r"leads: ([\d,]+) members", outputs[10]).group(1).replace(",", ""))
    assert (tmp_path / "leads.csv").read_text("utf-8").count("\n") == members + 1
    assert "BG/NBD" in outputs[11] and "app" in outputs[11]  # value: the fit, by channel
    assert "dormant" in outputs[12]  # lifecycle: stage counts
    assert "问题" in outputs[13] or "redeem" in outputs[13].lower()  # redemption: the answers
    html = (tmp_path / "value.html").read_text("utf-8")
    assert "客户价值报告" in html and "<script" not in html
    assert os.path.getsize(tmp_path / "docs" / "data-model.md") > 10_000
    assert (tmp_path / "docs" / "profile-features.md").is_file()

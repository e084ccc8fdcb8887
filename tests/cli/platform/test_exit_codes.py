"""The CLI's one error wrapper: ``error: <message>`` on stderr and the error's exit code, for
each exit code a refusal can give (see ``caifu.core.errors``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from caifu.cli import app
from caifu.core.errors import ContractError
from caifu.services.platform import workspace as workspace_service
from tests.factories import write

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "ws")
    for args in (["init", path], ["tenant", "create", "acme", "-w", path]):
        assert runner.invoke(app, args).exit_code == 0
    return path


def _refused(args: list[str], code: int) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert "error" not in result.stdout, result.stdout  # the message goes to stderr only
    assert result.stderr.startswith("error: "), result.stderr
    return " ".join(result.stderr.split())  # Rich wraps long lines


def test_exit_2_for_an_unknown_tenant(ws: str, tmp_path: Path) -> None:
    f = write(tmp_path / "branches.csv", "branch_id,name\nB1,x\n")
    err = _refused(["ingest", "-t", "nobody", "-w", ws, str(f)], 2)
    assert err == ("error: no tenant 'nobody' (create it with `caifu tenant create nobody`)")


def test_exit_2_for_a_bad_option(ws: str) -> None:
    err = _refused(["value", "-t", "acme", "-w", ws, "--by", "city"], 2)
    assert err.startswith("error: --by 'city': use one of ")


def test_exit_2_keeps_brackets_in_the_message(tmp_path: Path) -> None:
    # the message is text, not Rich markup: "[bold]" in a path is shown as typed
    err = _refused(["init", str(tmp_path / "w[bold]s")], 2)
    assert "w[bold]s: a workspace path may not contain * ? [ or ]" in err


def test_exit_3_for_a_refused_file(ws: str, tmp_path: Path) -> None:
    bad = write(tmp_path / "branches.csv", "branch_id,name,colour\nB1,x,red\n")
    err = _refused(["ingest", "-t", "acme", "-w", ws, str(bad)], 3)
    assert "branches.csv, line 1, column 'colour'" in err
    err = _refused(["wecom", "chats", "-t", "acme", "-w", ws, str(tmp_path / "none.jsonl")], 3)
    assert err == f"error: {tmp_path / 'none.jsonl'}: No such file or directory"


def test_exit_70_for_a_bug_in_caifu(ws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise ContractError("trades: key column 'trade_id' is not a column")

    monkeypatch.setattr(workspace_service, "list_tenants", broken)
    err = _refused(["tenant", "list", "-w", ws], 70)
    assert err == "error: trades: key column 'trade_id' is not a column"

"""``caifu groups content``: a group's content plan printed with what was refused and why,
the fallback said in words, bad input answered with an error naming it."""

from __future__ import annotations

import datetime as dt

from typer.testing import CliRunner

from caifu.cli import app
from caifu.services.container import Container
from tests.integration.scrm.group_world import seed

runner = CliRunner(env={"COLUMNS": "250"})


def _run(ws: Container, *args: str) -> tuple[int, str]:
    got = runner.invoke(app, ["groups", "content", *args, "-t", "acme", "-w", str(ws.root),
                              "--on", "2026-10-30"])
    return got.exit_code, got.output


def test_groups_content_prints_the_plan_and_the_refusals(sqlite_workspace: Container) -> None:
    # the resend window is measured from the wall clock: P1 posted to ``low`` 3 days ago
    seed(sqlite_workspace, now=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    code, out = _run(sqlite_workspace, "low", "--n", "3", "--k", "3")
    assert code == 0, out
    assert "plan day 2026-10-30 · judged: 按最低成员 C3 · may receive up to R3" in out
    assert "reach 3 (plan) · 3 with a published list (test-2026-10/abc123) · ranked by: lists" \
        in out
    assert ("content items 8 · eligible 4 · refused: COMPLIANCE 1, LEVEL_MISMATCH 1, "
            "NOT_VALID 1, RECENTLY_POSTED 1") in out
    assert "in the members' top 3: 6 content items · refused: COMPLIANCE 1, LEVEL_MISMATCH 1, " \
        "RECENTLY_POSTED 1" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [r.split("│")[2].strip() for r in rows] == ["A1", "A2", "A3"]
    assert "R3" in rows[0] and "群内 2/3 位成员的推荐前3含此内容（平均第 2.5 位）" in rows[0]
    assert "H1" not in "".join(rows) and "X1" not in "".join(rows)


def test_groups_content_says_when_it_falls_back(sqlite_workspace: Container) -> None:
    seed(sqlite_workspace)
    code, out = _run(sqlite_workspace, "nolists", "--n", "2")
    assert code == 0, out
    assert "ranked by: popularity" in out
    assert "note: 群成员均无已发布的推荐清单：改按可推送内容的阅读热度排序" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 2 and all("popularity" in r for r in rows)


def test_groups_content_refuses_bad_input_by_name(sqlite_workspace: Container) -> None:
    seed(sqlite_workspace)
    code, out = _run(sqlite_workspace, "nope")
    assert code != 0 and "no preference group 'nope'" in out
    got = runner.invoke(app, ["groups", "content", "low", "-t", "acme", "-w",
                              str(sqlite_workspace.root), "--on", "30.10.2026"])
    assert got.exit_code != 0 and "--on '30.10.2026': not a date YYYY-MM-DD" in got.output

"""``caifu risk link-story / classify-story / exposure / alerts / tasks / task`` on the small
demo broker: a story about a held company becomes alerts and tasks, and a task moves."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app
from caifu.services.risk.intake import Intake
from caifu.services.risk.tasks import list_tasks
from tests.conftest import Broker
from tests.integration.risk.test_exposure import OPS, _most_held, _oracle

runner = CliRunner(env={"COLUMNS": "250"})


def test_story_to_tasks_and_a_task_moved(small_broker: Broker, tmp_path: Path) -> None:
    c = small_broker.copy(tmp_path / "ws")
    ws = str(tmp_path / "ws")
    code, name = _most_held(c)
    story = Intake(c).take_body("acme", json.dumps({
        "title": f"{name}收到中国证监会立案告知书", "url": "https://news.example.cn/x/1",
        "published": "2026-01-05 09:30"}, ensure_ascii=False).encode()).documents[0]["story_id"]
    r = runner.invoke(app, ["risk", "link-story", story, "-t", "acme", "-w", ws])
    assert r.exit_code == 0 and code in r.output, r.output
    r = runner.invoke(app, ["risk", "exposure", story, "-t", "acme", "-w", ws])
    assert r.exit_code == 2 and "classify it first" in r.output, r.output
    r = runner.invoke(app, ["risk", "classify-story", story, "-t", "acme", "-w", ws,
                            "--event-type", "regulatory_investigation", "--polarity",
                            "negative", "--actor", "ops.li"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["risk", "exposure", story, "-t", "acme", "-w", ws])
    n = len(_oracle(c, [code]))
    assert r.exit_code == 0 and f"new alerts and tasks {n:,}" in " ".join(r.output.split())
    r = runner.invoke(app, ["risk", "alerts", "-t", "acme", "-w", ws, "--status", "open"])
    assert r.exit_code == 0 and f"({n:,})" in r.output, r.output
    task = list_tasks(c, OPS, limit=1)["items"][0]
    r = runner.invoke(app, ["risk", "tasks", "-t", "acme", "-w", ws, "--advisor",
                            task["advisor_id"]])
    assert r.exit_code == 0 and task["task_id"] in r.output, r.output
    r = runner.invoke(app, ["risk", "task", task["task_id"], "-t", "acme", "-w", ws,
                            "--set", "done"])
    assert r.exit_code == 2 and "from open: acknowledged, dismissed" in r.output, r.output
    r = runner.invoke(app, ["risk", "task", task["task_id"], "-t", "acme", "-w", ws,
                            "--set", "acknowledged", "--actor", "adv.wang"])
    assert r.exit_code == 0 and "open → acknowledged (by adv.wang)" in r.output, r.output
    c.close()

"""``caifu risk ingest`` prints a per-file outcome (a file refused whole is named and the
others go on, exit 3); ``stories``, ``story`` and ``rejections`` show what landed; ``watch
--once`` takes in a folder and moves each file to processed/ or rejected/."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from caifu.cli import app
from caifu.services.container import build
from caifu.services.risk.intake import list_stories
from caifu.settings import Settings
from tests.integration.risk.test_intake import NEWS

runner = CliRunner(env={"COLUMNS": "250"})


def _workspace(tmp_path: Path) -> str:
    ws = str(tmp_path / "ws")
    assert runner.invoke(app, ["init", ws]).exit_code == 0
    assert runner.invoke(app, ["tenant", "create", "acme", "-w", ws]).exit_code == 0
    return ws


def _csv(docs: list[dict[str, str]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, ["source", "url", "published", "title", "body"],
                       extrasaction="ignore")
    w.writeheader()
    w.writerows(docs)
    return out.getvalue()


def test_ingest_files_with_a_summary_per_file(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    jsonl = tmp_path / "news.jsonl"
    jsonl.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in NEWS[:5])
                     + '{"title": "无网址", "published": "2025-04-01"}\n', encoding="utf-8")
    table = tmp_path / "more.csv"
    table.write_text(_csv(NEWS[5:]), encoding="utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_text("headline,link\na,b\n", encoding="utf-8")
    r = runner.invoke(app, ["risk", "ingest", "-t", "acme", "-w", ws, str(jsonl), str(table),
                            str(broken)])
    assert r.exit_code == 3, r.output
    assert "news.jsonl" in r.output and "more.csv" in r.output and "balanced" in r.output
    assert "broken.csv, line 1: the header has no title, published column" in r.output
    assert "news.jsonl: line 6, field 'url': MISSING_URL" in r.output
    assert "1 of 3 file(s) refused whole" in r.output
    c = build(Settings(), Path(ws))
    assert list_stories(c, "acme")["total"] == 7  # the nine real documents, two re-posts folded

    r = runner.invoke(app, ["risk", "stories", "-t", "acme", "-w", ws])
    assert r.exit_code == 0 and "(7)" in r.output and "中国证监会对中船应急立案" in r.output
    sid = next(s["story_id"] for s in list_stories(c, "acme")["items"]
               if s["title"] == NEWS[0]["title"])
    r = runner.invoke(app, ["risk", "story", sid, "-t", "acme", "-w", ws])
    assert r.exit_code == 0 and "m.yjbys.cc" in r.output and "near" in r.output
    r = runner.invoke(app, ["risk", "rejections", "-t", "acme", "-w", ws])
    assert r.exit_code == 0 and "MISSING_URL" in r.output and "无网址" in r.output


def test_watch_once_moves_files_to_processed_or_rejected(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(json.dumps(NEWS[0], ensure_ascii=False) + "\nnope\n",
                                   encoding="utf-8")
    (inbox / "b.txt").write_text("not news", encoding="utf-8")
    (inbox / "c.json").write_bytes(b'[{"title": "x"},')
    (inbox / "d.jsonl.part").write_text("{}", encoding="utf-8")
    r = runner.invoke(app, ["risk", "watch", str(inbox), "-t", "acme", "-w", ws, "--once"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["a.jsonl"]
    rejected = sorted(p.name for p in (inbox / "rejected").iterdir())
    assert rejected == ["c.json", "c.json.error.txt"]
    assert "not a JSON array" in (inbox / "rejected" / "c.json.error.txt").read_text()
    # not news files, or still being written: left where they are
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["b.txt", "d.jsonl.part"]
    assert "→ processed/" in r.output and "not a JSON array" in r.output

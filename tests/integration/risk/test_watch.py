"""The watched folder: a file is taken once it has stopped changing, moved to processed/
(documents stored, rejected ones kept) or rejected/ (refused whole, with the reason beside
it), and a second file of the same name never overwrites the first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caifu.core.errors import ConfigError
from caifu.services.container import Container
from caifu.services.risk.intake import list_rejections, list_stories
from caifu.services.risk.watch import Watcher
from tests.integration.risk.test_intake import NEWS


def _jsonl(docs: list[dict[str, str]]) -> str:
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)


def test_files_are_taken_when_settled_and_moved(sqlite_workspace: Container,
                                                tmp_path: Path) -> None:
    c, inbox = sqlite_workspace, tmp_path / "inbox"
    inbox.mkdir()
    w = Watcher(c, "acme", inbox)
    (inbox / "one.jsonl").write_text(_jsonl(NEWS[:2]), encoding="utf-8")
    assert w.poll() == []  # seen once: it may still be being written
    with (inbox / "one.jsonl").open("a", encoding="utf-8") as f:
        f.write(_jsonl(NEWS[2:3]) + "{bad\n")
    assert w.poll() == []  # it changed: wait again
    [done] = w.poll()
    assert done.report is not None and done.moved_to == inbox / "processed" / "one.jsonl"
    assert (done.report.received, done.report.stored, done.report.rejected) == (4, 3, 1)
    assert list_stories(c, "acme")["total"] == 2
    assert list_rejections(c, "acme")["items"][0]["origin"] == "one.jsonl"

    (inbox / "one.jsonl").write_text(_jsonl(NEWS[:1]), encoding="utf-8")  # same name again
    (inbox / "gbk.csv").write_bytes("标题,网址\n甲,乙\n".encode("gbk"))
    w.poll()
    outcomes = {o.name: o for o in w.poll()}
    assert outcomes["one.jsonl"].report is not None
    assert outcomes["one.jsonl"].report.duplicates == 1
    assert outcomes["one.jsonl"].moved_to.parent.name == "processed"
    assert len(list((inbox / "processed").glob("one*.jsonl"))) == 2  # both kept
    assert outcomes["gbk.csv"].report is None
    assert outcomes["gbk.csv"].error == ("gbk.csv, line 1: the header is not utf-8 (a GBK export? "
                                         "give its encoding, e.g. --encoding gbk)")
    assert (inbox / "rejected" / "gbk.csv.error.txt").exists()
    assert not any(p.is_file() for p in inbox.iterdir())


def test_the_folder_must_exist(sqlite_workspace: Container, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        Watcher(sqlite_workspace, "acme", tmp_path / "missing")

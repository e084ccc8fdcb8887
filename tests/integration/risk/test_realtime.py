"""Real time on the demo broker: a real headline about a company the demo holds, posted to
``POST /v1/risk/documents`` and nothing else — when the answer comes back, every holder
(directly, or through a fund whose disclosed top holdings name the company) has an alert and
an open task assigned to his advisor, and the set of (customer, security) with a task is
exactly what a plain DuckDB query over the lake's Parquet files gives (the oracle of
``test_exposure``). A processing failure keeps the documents, is reported and kept on the
story, and ``caifu risk process`` runs it again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.adapters.sor.risk_models import risk_alerts, risk_stories, risk_tasks
from caifu.api import create_app
from caifu.api.schemas.risk import IntakeReceipt
from caifu.cli import app as cli
from caifu.services.container import Container
from caifu.services.platform import users
from caifu.services.risk import processing
from caifu.settings import Settings
from tests.conftest import Broker
from tests.integration.risk.holdings import hold
from tests.integration.risk.oracle import routes as _routes
from tests.serving import serving

SECRET = "k3y-for-tests-only-0123456789abcdefghijklmnop"

# src/caifu/data/risk/corpus/news.jsonl rn-0462, verbatim (traditional characters, as
# published): 祥源文旅 (600576) — held directly by customers of the demo broker (seed 3) and
# among the disclosed top holdings of its funds
HEADLINE = ("值得一提的是,祥源文旅也在2024年10月18日收到來自中國證監(jiān)會(huì)的《立案告知書》,"
            "因涉嫌信息披露違法違規(guī),根據(jù)相關(guān)法律法規(guī),中國證監(jiān)會(huì)決定對(duì)公司立案。")
URL = "http://xcellentzone.com/detail/1729523804168740.html"


def _post(http: httpx.Client, key: str, docs: list[dict[str, str]]) -> IntakeReceipt:
    r = http.post("/v1/risk/documents", json=docs, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return IntakeReceipt.model_validate(r.json())


@pytest.fixture(scope="module")
def demo(small_broker: Broker, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[httpx.Client, Container, str]]:
    c = small_broker.copy(tmp_path_factory.mktemp("risk-realtime") / "ws")
    key = users.create_key(c, "acme", "ops", "news-feed", "ops.li").secret
    with serving(create_app(Settings(secret_key=SECRET), c)) as http:
        yield http, c, key
    c.close()


def test_a_posted_headline_gives_exactly_the_oracles_holders_a_task(demo) -> None:  # type: ignore[no-untyped-def]
    http, c, key = demo
    receipt = _post(http, key, [{"title": HEADLINE, "url": URL,
                                 "published": "2024-10-21 23:16", "source": "xcellentzone"}])
    [p] = receipt.processing
    assert (receipt.new_stories, p.error, p.decided_by) == (1, None, "classifier")
    assert (p.event_type, p.polarity, p.listed) == ("regulatory_investigation", "negative",
                                                    ["600576"])
    oracle = set(_routes(c, ["600576"]))
    direct = {k for k, v in _routes(c, ["600576"]).items() if "position" in v}
    assert len(oracle) > len(direct) > 5  # held directly, and by some only through funds
    assert (p.holders, p.new_alerts, p.repeats) == (len(oracle), len(oracle), 0)

    with c.engine.connect() as conn:  # the answer has come back: the tasks are there
        a, t = risk_alerts, risk_tasks
        tasked = conn.execute(select(a.c.customer_id, a.c.security_code, t.c.advisor_id,
                                     t.c.status).join(t, (t.c.tenant_id == a.c.tenant_id)
                                                      & (t.c.alert_id == a.c.alert_id))
                              .where(a.c.story_id == p.story_id)).all()
        cust = CONTRACT_TABLES["customers"]
        advisor_of = dict(conn.execute(select(cust.c.customer_id, cust.c.advisor_id)
                                       .where(cust.c.tenant_id == "acme")).all())
    assert {(r.customer_id, r.security_code) for r in tasked} == oracle
    assert all(r.status == "open" for r in tasked)
    assert [r for r in tasked if r.advisor_id != advisor_of[r.customer_id]] == []
    assert sum(r.advisor_id is not None for r in tasked) > 0

    again = _post(http, key, [{"title": HEADLINE, "url": URL, "published": "2024-10-21 23:16"}])
    assert (again.duplicates, again.processing) == (1, [])  # nothing founded, nothing raised


def test_a_denial_posted_raises_no_task(demo) -> None:  # type: ignore[no-untyped-def]
    http, c, key = demo
    receipt = _post(http, key, [{"title": "祥源文旅澄清:公司未收到中国证监会立案告知书,经营一切正常",
                                 "url": "https://news.example.cn/r/deny",
                                 "published": "2024-10-22 09:00"}])
    [p] = receipt.processing
    assert p.event_type == "none" and p.new_alerts == 0 and p.error is None


@pytest.fixture
def acme(workspace: Container) -> Container:
    hold(workspace, "acme", [("C1", "688496", 100, "1000.00", "900.00"),
                             ("C2", "688496", 50, "500.00", "450.00")])
    return workspace


def test_a_failure_keeps_the_documents_shows_and_is_retried(
        acme: Container, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = users.create_key(acme, "acme", "ops", "news-feed", "ops.li").secret
    title = "清越科技公告,公司于近日收到中国证监会出具的《立案告知书》。"

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("database went away")

    with serving(create_app(Settings(secret_key=SECRET), acme)) as http:
        with monkeypatch.context() as m:
            m.setattr(processing, "process_stories", broken)
            receipt = _post(http, key, [{"title": title, "url": "https://news.example.cn/r/9",
                                         "published": "2026-01-05 09:30"},
                                        {"title": "no time", "url": "https://x.cn/2"}])
    [p] = receipt.processing
    assert (receipt.stored, receipt.rejected) == (1, 1)
    assert p.error == "internal error (RuntimeError): database went away"
    assert (p.event_type, p.new_alerts) == (None, 0)
    with acme.engine.connect() as conn:
        story = conn.execute(select(risk_stories)).mappings().one()
        assert conn.execute(select(risk_tasks)).first() is None
    assert story["processing_error"] == p.error and story["processing_failed_at"] is not None
    assert processing.unprocessed(acme, "acme") == [p.story_id]

    runner = CliRunner(env={"COLUMNS": "250"})
    r = runner.invoke(cli, ["risk", "process", "-t", "acme", "-w", str(acme.root)])
    assert r.exit_code == 0, r.output
    assert "regulatory_investigation" in r.output and "688496" in r.output
    with acme.engine.connect() as conn:
        story = conn.execute(select(risk_stories)).mappings().one()
        tasks = conn.execute(select(risk_tasks.c.customer_id)).scalars().all()
    assert story["processing_error"] is None and sorted(tasks) == ["C1", "C2"]
    assert processing.unprocessed(acme, "acme") == []
    r = runner.invoke(cli, ["risk", "process", "-t", "acme", "-w", str(acme.root)])
    assert r.exit_code == 0 and "no unprocessed stories" in r.output


def test_cli_ingest_and_the_watched_folder_process_what_they_found(
        acme: Container, tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    ws = str(acme.root)
    news = tmp_path / "news.jsonl"
    news.write_text(json.dumps({"title": "清越科技公告,公司于近日收到中国证监会出具的《立案告知书》。",
                                "url": "https://news.example.cn/r/5",
                                "published": "2026-01-05 09:30"}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    r = runner.invoke(cli, ["risk", "ingest", "-t", "acme", "-w", ws, str(news)])
    assert r.exit_code == 0, r.output
    assert "new stories → alerts and tasks" in r.output
    row = next(line for line in r.output.splitlines() if "regulatory_investigat" in line)
    assert "high" in row and "688496" in row and "│ 2 " in row  # 2 holders, 2 new alerts

    from caifu.services.risk.watch import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_text(json.dumps({
        "title": "清越科技澄清:公司未收到中国证监会立案告知书,经营一切正常",
        "url": "https://news.example.cn/r/6", "published": "2026-01-05 10:00"},
        ensure_ascii=False) + "\n", encoding="utf-8")
    [out] = Watcher(acme, "acme", inbox, settle_polls=0).poll()
    [p] = out.processed
    assert p.error is None and p.outcome.event_type == "none" and p.outcome.new_alerts == 0
    assert out.moved_to.parent.name == "processed"

"""The value report on the scored demo broker: every section, numbers that match the analyses,
nothing fetched, no personal data — and a real browser renders it."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import CONTRACT_TABLES
from caifu.core.identity import Principal
from caifu.services.metrics.catalog import shipped
from caifu.services.metrics.query import answer, answers
from caifu.services.value.report import HEADLINE, ValueReport, gather
from caifu.web.report import render, write
from tests.conftest import chromium


@pytest.fixture(scope="module")
def report(scored) -> tuple[ValueReport, str]:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    r = gather(c, "acme")
    return r, render(r)


def test_every_section_is_there_with_its_charts(report) -> None:  # type: ignore[no-untyped-def]
    r, html = report
    for heading in ("经营指标", "客户价值与效率", "客户生命周期", "流失与倾向模型",
                    "基金赎回分析", "问题一", "问题二", "问题三", "问题四"):
        assert heading in html, heading
    # CLV histogram, channels, advisors, lifecycle, models, redeemed funds, holding periods,
    # and a 12-month line per headline metric that has two months of values
    lines = sum(1 for a in r.kpis if sum(row["value"] is not None for row in a.rows) >= 2)
    assert lines >= 8 and html.count("<svg") == 7 + lines
    assert r.models is not None and "尚无模型" not in html
    for t in r.models["targets"]:
        assert f"{t['backtest']['lightgbm']['auc']:.3f}" in html
    # section 5 shows the newest `caifu recommend evaluate` of the workspace, when there is one
    # (tests/cli/recommend runs one on this broker; the order of the two modules is free)
    assert "推荐效果" in html
    if r.recommendations is None:
        assert "尚无推荐评估" in html
    else:
        for ranker in r.recommendations["rankers"]:
            assert f"<td class=\"l\">{ranker['name']}</td><td>{ranker['observed']['ndcg']:.3f}" \
                in html


def test_headline_figures_come_from_the_metric_layer(scored, report) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    r, html = report
    assert [a.metric.name for a in r.kpis] == list(HEADLINE)
    cat = shipped()
    for name in HEADLINE:
        assert f"<code>{name}</code> v{cat.metric(name).version} · {cat.definition_hash(name)}" \
            in html
    # the newest month with trades is what `caifu metrics query` answers for it, on its own
    start = r.kpis[0].query.start
    for name in ("active_traders", "customers_total", "new_customers"):
        direct = answer(c, Principal("acme", "t", "ops"), name, grain="month", start=start,
                        end=r.as_of)
        report = next(a for a in r.kpis if a.metric.name == name)
        assert direct.rows and direct.rows == report.rows
        by_month = {row["period"]: row["value"] for row in direct.rows}
        newest = by_month.get(dt.date(r.as_of.year, r.as_of.month, 1))
        cell = "—" if newest is None else f"{newest:,}"
        assert re.search(rf"<code>{name}</code>[^<]*</td><td>{cell}</td>", html), name


def test_sections_1_2_and_4_come_from_the_metric_layer(scored, report) -> None:  # type: ignore[no-untyped-def]
    """The value run's totals and roll-ups, the stage counts and question 1 are what
    `caifu metrics query` answers on the runs' dates; each section names its metrics."""
    c, _, _ = scored
    r, html = report
    assert r.figures is not None and r.figures.study is not None
    ops = Principal("acme", "t", "ops")
    cat = shipped()
    day = r.as_of
    direct = {a.metric.name: a.rows for a in answers(
        c, ops, ["clv_total", "efficiency_mean", "value_customers"], by=("value_channel",),
        grain="all", start=day, end=day)}
    for g in r.figures.value.rollups["channel"]:
        row = next(x for x in direct["clv_total"] if x["value_channel"] == g["group"])
        assert g["clv"] == row["value"]
    stages = answer(c, ops, "lifecycle_customers", by=("lifecycle_run_stage",),
                    grain="all", start=day, end=day)
    assert r.figures.stages == {x["lifecycle_run_stage"]: x["value"] for x in stages.rows}
    assert r.figures.stages == {k: v for k, v in r.lifecycle.counts.items() if v}
    period = r.figures.study.period
    assert r.redemption is not None and period == r.redemption.period
    amount = answer(c, ops, "study_redeemed_amount", by=("fund",), grain="all",
                    start=period.end, end=period.end,
                    where=f"study_period_start = DATE '{period.start}'")
    top = r.figures.study.funds[0]
    assert top["redeemed_amount"] == next(x["value"] for x in amount.rows
                                          if x["fund"] == top["fund_code"])
    assert f"{float(top['redeemed_amount']):,.0f}" in html
    for name in ("clv_total", "clv_payback_total", "lifecycle_customers",
                 "study_redeemed_amount", "study_holding_days_mean"):
        assert f"<code>{name}</code> v{cat.metric(name).version} · " \
               f"{cat.definition_hash(name)}" in html, name


def test_numbers_match_the_analyses(report) -> None:  # type: ignore[no-untyped-def]
    r, html = report
    totals = r.value.totals
    assert f"{totals['clv']:,.0f}" in html
    assert f"{totals['acquisition_cost']:,.0f}" in html
    assert f"{totals['customers']:,}" in html
    for stage, n in r.lifecycle.counts.items():
        assert re.search(rf">{stage}</td><td class=\"l\">[^<]+</td><td>{n:,}</td>", html), stage
    assert sum(r.lifecycle.counts.values()) == totals["customers"]
    assert r.reassurance is not None and r.redemption is not None
    top = r.reassurance.reassurance.to_pylist()[0]
    assert f">{top['customer_id']}</td>" in html
    # questions 1–3 are about a redemption wave of the history when there was one
    if r.reassurance.waves.num_rows:
        assert r.redemption.period.end <= r.as_of and "赎回高峰" in r.redemption_basis


def test_self_contained_and_without_personal_data(scored, report) -> None:  # type: ignore[no-untyped-def]
    c, _, _ = scored
    _, html = report
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"url\((?!#)", html) and "@import" not in html  # only in-page refs
    customers = CONTRACT_TABLES["customers"]
    with c.engine.connect() as conn:
        rows = conn.execute(select(customers.c.name, customers.c.id_number, customers.c.mobile)
                            .where(customers.c.tenant_id == "acme")).all()
    assert len(rows) == 4000
    leaked = [v for row in rows for v in row if v and len(v) >= 3 and v in html]
    assert leaked == []


def html_svgs(r: ValueReport) -> int:
    """The report's charts: seven, and a 12-month line per headline metric with two values."""
    return 7 + sum(1 for a in r.kpis if sum(row["value"] is not None for row in a.rows) >= 2)


def test_a_browser_renders_it(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Headless Chromium loads the file with the network off and lays out every chart."""
    browser = chromium("browser rendering test")
    r, _ = report
    page = write(r, tmp_path / "value.html")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--proxy-server=127.0.0.1:9", "--window-size=1200,2000"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert dom.count("<svg") == html_svgs(r) and "经营指标" in dom and "基金赎回分析" in dom
    shot = tmp_path / "value.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True,
                   timeout=120, check=True)
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1200, 2000)
    lo, hi = image.getextrema()
    assert hi - lo > 100  # not a blank page: text and bars drawn
    histogram = image.histogram()
    assert max(histogram) < 0.97 * sum(histogram)


def test_a_broker_without_fund_data_still_gets_its_report(tmp_path: Path) -> None:
    """No fund transactions: value, lifecycle and models are reported, the fund section says
    why it is missing instead of failing the whole report."""
    from caifu.data.demo import generate
    from caifu.services.ingest.load import Ingest
    from caifu.services.platform.workspace import create_tenant, init_workspace
    from caifu.settings import Settings

    out = tmp_path / "exports"
    generate(out, customers=600, seed=3)
    c = init_workspace(tmp_path / "ws", Settings(duckdb_memory_limit="2GB"))
    create_tenant(c, "acme", "甲乙证券")
    files = [p for p in out.iterdir() if p.is_file() and not p.name.startswith("jjjy")
             and p.name != "sources.yaml"]
    Ingest(c).ingest("acme", files, mapping=out / "sources.yaml")
    r = gather(c, "acme")
    html = render(r)
    assert r.redemption is None and r.reassurance is None
    assert "no fund transactions: the fund-redemption section is left out" in r.notes
    lines = sum(1 for a in r.kpis if sum(row["value"] is not None for row in a.rows) >= 2)
    assert "本节从略" in html and "客户价值与效率" in html and html.count("<svg") == 4 + lines
    fund_sales = next(a for a in r.kpis if a.metric.name == "fund_sales")
    assert fund_sales.rows == []  # no fund data: the metric answers nothing, not zeros
    c.close()


def test_both_views_are_in_the_report_with_their_numbers(scored, report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The lifetime view (the default, ten years) and the payback view (12 months): each row
    with its horizon, CLV, costs, efficiency and the share of customers below zero — that
    share recomputed here from the per-customer rows."""
    r, html = report
    views = r.value.views
    assert [(v.name, v.months) for v in views] == [("lifetime", 120), ("payback", 12)]
    for v, label in zip(views, ("终身口径（默认）", "回本口径"), strict=True):
        efficiency = np.array(v.per_customer["efficiency"].to_pylist(), dtype=float)
        share = float(np.mean(efficiency < 0))
        assert v.totals["negative_share"] == pytest.approx(share)
        t = v.totals
        cells = [f"{v.months} 个月", f"{t['clv']:,.0f}", f"{t['acquisition_cost']:,.0f}",
                 f"{t['retention_cost']:,.0f}", f"{t['efficiency']:,.0f}",
                 f"{100 * share:.1f} %"]
        assert re.search(rf"<td class=\"l\">{label}</td>" + "".join(
            rf"<td[^>]*>{re.escape(cell)}</td>" for cell in cells), html), (label, cells)
    assert views[0].totals["negative_share"] < views[1].totals["negative_share"]
    # `caifu report value` says both on the terminal too
    from rich.console import Console

    from caifu.cli.views.value import value_report

    c, _, _ = scored
    console = Console(record=True, width=300)
    value_report(c, "acme", console, out=tmp_path / "value.html")
    text = console.export_text()
    for v in views:
        assert (f"{v.name} view: CLV ({v.months} months, discounted) "
                f"{v.totals['clv']:,.0f} yuan") in text
        assert f"({v.totals['negative_share']:.0%} of customers below zero)" in text

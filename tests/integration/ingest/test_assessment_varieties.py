"""A broker's risk-assessment export with its 投资品种 answers, ingested into the system of
record (SQLite and PostgreSQL): names become codes, a blank answer stays NULL, an unknown
variety is quarantined with its reason and its row as read — and what is stored is what the
sidebar's suitability re-check judges on."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from caifu.adapters.sor.models import CONTRACT_TABLES, ingest_quarantine
from caifu.adapters.sor.repos import scrm as scrm_repo
from caifu.core.suitability import judge
from caifu.services.container import Container
from caifu.services.ingest.load import Ingest
from caifu.services.recommend import serving
from tests.factories import seed_reference, write

pytestmark = pytest.mark.dialect  # ingest writes the SoR by COPY on PostgreSQL

SOURCES = """
sources:
  - match: "fxcp*.csv"
    table: suitability_assessments
    encoding: gbk
    columns: {测评编号: assessment_id, 客户号: customer_id, 问卷版本: questionnaire_version,
              测评日期: assessed_on, 问卷得分: score, 风险承受能力: risk_level,
              不能承受任何损失: no_loss_tolerance, 无完全民事行为能力: no_civil_capacity,
              投资期限: horizon, 有效期至: valid_until, 投资品种: varieties}
    values:
      horizon: {短期: short, 中期: medium, 长期: long}
"""
HEADER = ("测评编号,客户号,问卷版本,测评日期,问卷得分,风险承受能力,不能承受任何损失,"
          "无完全民事行为能力,投资期限,有效期至,投资品种\n")


def _row(aid: str, cid: str, varieties: str) -> str:
    # a quoted field: the answer's own commas are not the file's
    return f'{aid},{cid},2025v1,20250501,75,C4,否,否,长期,20280430,"{varieties}"\n'


def _stored(c: Container) -> dict[str, str | None]:
    t = CONTRACT_TABLES["suitability_assessments"]
    with c.engine.connect() as conn:
        return dict(conn.execute(select(t.c.assessment_id, t.c.varieties)
                                 .where(t.c.tenant_id == "acme")).all())


def test_varieties_round_trip_into_the_sor_and_the_re_check(workspace: Container,
                                                           tmp_path: Path) -> None:
    ing = Ingest(workspace)
    ing.ingest("acme", seed_reference(tmp_path / "ref"))
    src = tmp_path / "src"
    write(src / "sources.yaml", SOURCES)
    body = (HEADER + _row("FX1", "C00001", "现金管理、固定收益") + _row("FX2", "C00002", "equity,cash")
            + _row("FX3", "C00003", "") + _row("FX4", "C00004", "权益、黄金"))
    path = write(src / "fxcp_20250501.csv", body, "gbk")
    (r,) = ing.ingest("acme", [path])
    assert (r.rows_in, r.inserted, r.quarantined) == (4, 3, 1)
    assert r.reasons == {"varieties:ENUM": 1}
    assert _stored(workspace) == {"FX1": "cash,fixed_income", "FX2": "cash,equity", "FX3": None}
    with workspace.engine.connect() as conn:
        (q,) = conn.execute(select(ingest_quarantine.c.row_number, ingest_quarantine.c.reasons,
                                   ingest_quarantine.c.raw_json)).all()
    assert (q.row_number, q.reasons) == (4, "varieties:ENUM")
    assert json.loads(q.raw_json)["投资品种"] == "权益、黄金"  # kept as the file had it

    # the sidebar's re-check reads the stored answer: an equity fund is refused to C00001
    on = dt.date(2025, 6, 1)
    with workspace.engine.connect() as conn:
        latest = scrm_repo.latest_assessments(conn, "acme", ["C00001", "C00002", "C00003"])
    verdicts = {cid: judge(serving.investor(row, False), "R3", on, horizon="medium",
                           variety="equity").rule for cid, row in latest.items()}
    assert verdicts == {"C00001": "VARIETY_MISMATCH", "C00002": "OK", "C00003": "OK"}

    # a corrected answer is an update of master data, not a new row
    fixed = write(src / "fxcp_20250502.csv",
                  HEADER + _row("FX1", "C00001", "现金管理,固定收益,权益"), "gbk")
    (r2,) = ing.ingest("acme", [fixed])
    assert (r2.inserted, r2.updated, r2.quarantined) == (0, 1, 0)
    assert _stored(workspace)["FX1"] == "cash,fixed_income,equity"

"""SoR tables of data quality (issue 17, point 5): each committed batch's profile, and the
alerts the thresholds raise. Ingest writes the profile in the batch's own commit; the
checks after each load and ``caifu quality check`` raise and resolve the alerts; the
console's quality page reads both."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Float, Index, String, Table, Text

from caifu.adapters.sor.metadata import metadata

ingest_profiles = Table(
    "ingest_profiles",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("batch_id", String(40), primary_key=True, comment="the ingest_log batch"),
    Column("table_name", String(64), nullable=False),
    Column("rows_loaded", BigInteger, nullable=False, comment="rows the batch wrote"),
    Column("nulls_json", Text, nullable=False,
           comment="column -> null values among the rows written"),
    Column("date_column", String(64), comment="the table's business date column, if any"),
    Column("oldest_date", Date, comment="oldest business date written (tenant's local date)"),
    Column("newest_date", Date, comment="newest business date written (tenant's local date)"),
    Column("profiled_at", DateTime, nullable=False),
    comment="导入批次画像：入库行数、各列空值数、业务日期范围",
)
Index(None, ingest_profiles.c.tenant_id, ingest_profiles.c.table_name,
      ingest_profiles.c.newest_date)

quality_alerts = Table(
    "quality_alerts",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("alert_id", String(32), primary_key=True),
    Column("table_name", String(64), nullable=False),
    Column("rule", String(32), nullable=False,
           comment="quarantine_rate | null_rate_rise | freshness"),
    Column("subject", String(64), nullable=False,
           comment="the column of a null-rate alert, else empty"),
    Column("observed", Float, comment="rate, rise or lag (days) when last breached"),
    Column("threshold", Float, comment="the threshold it broke"),
    Column("batch_id", String(40), comment="the batch last judged in breach, if any"),
    Column("detail", Text, nullable=False, comment="what was seen, in words"),
    Column("status", String(10), nullable=False, comment="open | resolved"),
    Column("raised_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False, comment="the last check that breached"),
    Column("resolved_at", DateTime),
    Column("resolved_by", String(40), comment="the batch whose check passed, or 'check'"),
    Column("open_key", String(1), comment="'1' while open, NULL once resolved: the unique "
                                          "index allows one open alert per rule and subject"),
    comment="数据质量告警：阈值被突破时打开，之后检查通过时关闭",
)
Index(None, quality_alerts.c.tenant_id, quality_alerts.c.table_name, quality_alerts.c.rule,
      quality_alerts.c.subject, quality_alerts.c.open_key, unique=True)
Index(None, quality_alerts.c.tenant_id, quality_alerts.c.status, quality_alerts.c.raised_at)

QUALITY_TABLES = (ingest_profiles, quality_alerts)

__all__ = ["QUALITY_TABLES", "ingest_profiles", "quality_alerts"]

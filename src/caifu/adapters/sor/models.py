"""SQLAlchemy tables for the system of record, generated from the table contracts.

Every table starts with ``tenant_id`` and has it as the first primary-key column, so no row
exists outside a tenant and every key lookup is a tenant-scoped index lookup. Operational
tables (ingest log, quarantine) are declared here by hand.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.types import TypeEngine

from caifu.adapters.sor.metadata import metadata
from caifu.data.contracts import Column as ContractColumn
from caifu.data.contracts import registry


class ExactDecimal(TypeDecorator[Decimal]):
    """DECIMAL(p,s) that stays exact on SQLite too.

    SQLite has no decimal type: SQLAlchemy's Numeric would round-trip money through a float.
    There we store the canonical text and convert back; PostgreSQL gets a real NUMERIC.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 2) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        quantum = Decimal(1).scaleb(-self.scale)
        value = Decimal(value).quantize(quantum)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:  # noqa: ARG002
        return None if value is None else Decimal(value)


def _sa_type(col: ContractColumn) -> TypeEngine[Any]:
    match col.kind:
        case "string":
            return String(col.max_length) if col.max_length else Text()
        case "int":
            return BigInteger()
        case "decimal":
            return ExactDecimal(col.precision, col.scale)
        case "float":
            return Float()
        case "date":
            return Date()
        case "timestamp":
            return DateTime()
        case "bool":
            return Boolean()
    raise AssertionError(col.kind)


def _contract_tables() -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for contract in registry():
        if contract.store != "sor":
            continue
        cols: list[Column[Any]] = []
        if contract.name != "tenants":
            cols.append(Column("tenant_id", String(32), primary_key=True, comment="租户编号"))
        for c in contract.columns:
            cols.append(
                Column(
                    c.name,
                    _sa_type(c),
                    primary_key=c.name in contract.key,
                    nullable=not c.required,
                    comment=c.desc,
                )
            )
        table = Table(contract.name, metadata, *cols, comment=contract.desc)
        # Index every reference so joins and "customers of advisor X" stay point lookups.
        for c, _, _ in contract.refs:
            if c.name not in contract.key:
                Index(None, table.c.tenant_id, table.c[c.name])
        tables[contract.name] = table
    return tables


CONTRACT_TABLES = _contract_tables()

ingest_log = Table(
    "ingest_log",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("batch_id", String(40), primary_key=True),
    Column("table_name", String(64), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("source_sha256", String(64), nullable=False),
    Column("source_bytes", BigInteger, nullable=False),
    Column("status", String(16), nullable=False, comment="committing | committed | failed"),
    Column("rows_in", BigInteger, nullable=False),
    Column("loaded", BigInteger, nullable=False),
    Column("inserted", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("quarantined", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("reasons_json", Text, nullable=False, comment="quarantine counts per reason code"),
    Column("timings_json", Text, nullable=False, comment="seconds per ingest phase"),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("error", Text),
    comment="每个批次一行：rows_in = loaded + quarantined + duplicates",
)
Index(None, ingest_log.c.tenant_id, ingest_log.c.table_name, ingest_log.c.started_at)

ingest_quarantine = Table(
    "ingest_quarantine",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("batch_id", String(40), primary_key=True),
    Column("row_number", BigInteger, primary_key=True, comment="1-based data row in the file"),
    Column("table_name", String(64), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("line", BigInteger, comment="line in the file (CSV/JSONL), if known"),
    Column("reasons", Text, nullable=False, comment="column:REASON codes separated by ';'"),
    Column("raw_json", Text, nullable=False, comment="the original row, as read"),
    comment="被拒绝的行及原因，连同原始数据",
)

schema_version = Table(
    "caifu_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# 64-bit on PostgreSQL (20M APP events a day overflow 32 bits in months); SQLite's
# autoincrement needs the INTEGER PRIMARY KEY spelling, which is 64-bit there anyway.
_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")

# --- profiles, tags and segments: serving rows the pipelines and the real-time path keep current

profile_serving = Table(
    "profile_serving",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("as_of", Date, nullable=False, comment="profile date"),
    Column("features_json", Text, nullable=False, comment="feature name -> value"),
    Column("built_at", DateTime, nullable=False),
    comment="客户画像（最新一期，供查询）",
)
# the newest served date is read by every build and every real-time micro-batch
Index(None, profile_serving.c.tenant_id, profile_serving.c.as_of)

tag_definitions = Table(
    "tag_definitions",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("tag_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kind", String(8), nullable=False, comment="rule | text | model"),
    Column("name", String(64), nullable=False),
    Column("spec_json", Text, nullable=False, comment="the definition as configured"),
    Column("first_used_at", DateTime, nullable=False),
    comment="标签定义（每个版本一行）",
)

tag_assignments = Table(
    "tag_assignments",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("tag_id", String(64), primary_key=True),
    Column("tag_version", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("evidence_json", Text, nullable=False, comment="why: features, or message and text"),
    Column("as_of", Date, nullable=False, comment="business date of the evidence"),
    Column("gained_at", DateTime, nullable=False, comment="when the customer gained the tag"),
    Column("updated_at", DateTime, nullable=False),
    Column("expires_at", DateTime, comment="lapses then unless renewed"),
    comment="客户当前标签及证据",
)
Index(None, tag_assignments.c.tenant_id, tag_assignments.c.tag_id)

tag_history = Table(
    "tag_history",
    metadata,
    Column("event_id", _SEQUENCE, primary_key=True, autoincrement=True),
    Column("tenant_id", String(32), nullable=False),
    Column("customer_id", String(32), nullable=False),
    Column("tag_id", String(64), nullable=False),
    Column("tag_version", Integer, nullable=False),
    Column("event", String(8), nullable=False, comment="gained | lost"),
    Column("as_of", Date, nullable=False, comment="business date of the change"),
    Column("recorded_at", DateTime, nullable=False),
    Column("evidence_json", Text, comment="evidence when gained"),
    comment="标签获得/失去的历史",
)
Index(None, tag_history.c.tenant_id, tag_history.c.customer_id, tag_history.c.tag_id)
Index(None, tag_history.c.tenant_id, tag_history.c.tag_id, tag_history.c.as_of)

segments = Table(
    "segments",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("segment_id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("expression", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    comment="客群定义",
)

segment_sizes = Table(
    "segment_sizes",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("segment_id", String(64), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("members", BigInteger, nullable=False),
    Column("computed_at", DateTime, nullable=False),
    comment="客群规模（按日期）",
)

event_inbox = Table(
    "event_inbox",
    metadata,
    Column("event_seq", _SEQUENCE, primary_key=True, autoincrement=True),
    Column("tenant_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False, comment="chat_message | app_event"),
    Column("payload_json", Text, nullable=False, comment="the event as received"),
    Column("received_at", DateTime, nullable=False),
    Column("status", String(10), nullable=False,
           comment="pending | applied | duplicate | rejected"),
    Column("reasons", Text, comment="column:RULE codes when rejected"),
    Column("batch_id", String(40), comment="the micro-batch that took the event"),
    Column("applied_at", DateTime),
    comment="实时事件收件箱：先落库，再由微批处理",
)
Index(None, event_inbox.c.tenant_id, event_inbox.c.status, event_inbox.c.event_seq)

audit_log = Table(
    "audit_log",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False,
           comment="1, 2, 3 … per tenant: a gap is a deleted record"),
    Column("at", DateTime, nullable=False, comment="UTC"),
    Column("actor", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("customer_ids_json", Text, nullable=False, comment="customers touched"),
    Column("fields_json", Text, nullable=False, comment="fields unmasked or exported"),
    Column("reason", Text, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, comment="SHA-256 of the record and prev_hash"),
    comment="审计日志：只追加，哈希链防篡改",
)

users = Table(
    "users",
    metadata,
    Column("user_id", String(64), primary_key=True, comment="login name, unique across tenants"),
    Column("tenant_id", String(32), comment="null only for platform_admin"),
    Column("display_name", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("branch_id", String(32), comment="branch_manager: his branch"),
    Column("advisor_id", String(32), comment="advisor: the advisor record he is"),
    Column("password_hash", String(200), nullable=False, comment="argon2id"),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    comment="用户（控制台登录）",
)
Index(None, users.c.tenant_id, users.c.role)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(8), primary_key=True, comment="public part of the key"),
    Column("tenant_id", String(32), nullable=False),
    Column("name", String(100), nullable=False, comment="what the key is for"),
    Column("role", String(20), nullable=False),
    Column("secret_sha256", String(64), nullable=False, comment="the secret is shown once"),
    Column("quota_per_minute", Integer, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    comment="API 密钥（机器客户端，按租户与角色）",
)
Index(None, api_keys.c.tenant_id)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("tenant_id", String(32), nullable=False),
    Column("kind", String(20), nullable=False,
           comment="ingest | build | score | value | lifecycle | redemption"),
    Column("params_json", Text, nullable=False),
    Column("status", String(10), nullable=False,
           comment="queued | running | succeeded | failed"),
    Column("result_json", Text, comment="what the job did (counts, dates), when succeeded"),
    Column("error", Text, comment="why it failed, for the user"),
    Column("submitted_by", String(100), nullable=False),
    Column("submitted_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    comment="后台作业：入库、构建、评分等，由服务进程依次执行",
)
Index(None, jobs.c.tenant_id, jobs.c.submitted_at)
Index(None, jobs.c.status, jobs.c.submitted_at)

customer_cards = Table(
    "customer_cards",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("as_of", Date, nullable=False, comment="the data date the card describes"),
    Column("card_json", Text, nullable=False,
           comment="holdings, recent trades, P&L, lifecycle, scores, suitability"),
    Column("built_at", DateTime, nullable=False),
    Column("lifecycle_stage", String(32),
           comment="the card's lifecycle stage, copied out so customer search can filter on it"),
    comment="客户卡片：客户360与侧边栏的持仓、交易、盈亏、生命周期、评分、适当性",
)
Index(None, customer_cards.c.tenant_id, customer_cards.c.lifecycle_stage)

dsr_requests = Table(
    "dsr_requests",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("request_id", String(32), primary_key=True),
    Column("customer_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False, comment="export | erasure"),
    Column("outcome", String(16), nullable=False,
           comment="exported | deleted | storage_only | refused"),
    Column("requested_by", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("completed_at", DateTime),
    Column("details_json", Text, nullable=False,
           comment="tables and row counts touched, the retention rule applied"),
    comment="个人信息主体请求：导出、删除或仅存储",
)
Index(None, dsr_requests.c.tenant_id, dsr_requests.c.customer_id)

restricted_customers = Table(
    "restricted_customers",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("since", DateTime, nullable=False),
    Column("request_id", String(32), nullable=False),
    Column("legal_basis", Text, nullable=False, comment="why the records are kept"),
    comment="仅存储：依法保留、停止处理的客户",
)

__all__ = ["CONTRACT_TABLES", "api_keys", "audit_log", "event_inbox", "users", "ExactDecimal", "ingest_log", "ingest_quarantine", "jobs", "customer_cards", "dsr_requests", "restricted_customers",
           "profile_serving", "segment_sizes", "segments", "tag_assignments", "tag_definitions",
           "tag_history"]

"""SoR tables of the risk news intake (issue 15, point 1): documents, the stories they fold
into, the LSH bands that find near duplicates, rejected documents and intake batches.

A story has room for what later stages add (``event_type``, ``companies_json``,
``classified_at``): the linking and classification fill them, or a table of their own keyed
by (tenant_id, story_id) — the intake never reads them.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
)

from caifu.adapters.sor.metadata import metadata

risk_stories = Table(
    "risk_stories",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("story_id", String(40), primary_key=True,
           comment="from the first document's content hash: the same input, the same id"),
    Column("title", Text, nullable=False, comment="the first document's title"),
    Column("first_document_id", String(40), nullable=False),
    Column("first_published_at", DateTime, nullable=False, comment="UTC"),
    Column("last_published_at", DateTime, nullable=False, comment="UTC"),
    Column("document_count", Integer, nullable=False),
    Column("site_count", Integer, nullable=False, comment="distinct sites carrying it"),
    Column("event_type", String(40), comment="filled by the event classification (later)"),
    Column("companies_json", Text, comment="filled by the company linking (later)"),
    Column("classified_at", DateTime),
    Column("polarity", String(10), comment="negative | neutral | positive (with event_type)"),
    Column("classified_by", String(120), comment="who set event_type: classifier or operator"),
    Column("severity", String(10), comment="low | medium | high (with event_type; none for none)"),
    Column("event_evidence_json", Text,
           comment="the sentence, lexicon hits, top n-grams and probability behind event_type"),
    Column("event_model_version", String(40),
           comment="event model and lexicon versions (classifier), null for an operator"),
    Column("linked_at", DateTime, comment="when companies_json was filled"),
    Column("processing_error", Text,
           comment="why the last link → classify → alerts run failed; null once it succeeds"),
    Column("processing_failed_at", DateTime, comment="when that run failed (UTC)"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    comment="舆情故事：同一消息的各处转载合并为一条",
)
Index(None, risk_stories.c.tenant_id, risk_stories.c.last_published_at)

risk_documents = Table(
    "risk_documents",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("document_id", String(40), primary_key=True, comment="from url and content hash"),
    Column("story_id", String(40), nullable=False),
    Column("fold", String(8), nullable=False,
           comment="first (founded the story) | exact | near: how it joined"),
    Column("similarity", Float, comment="estimated Jaccard to the closest member (near)"),
    Column("batch_id", String(40), nullable=False),
    Column("source", String(200), nullable=False, comment="the feed or site as sent"),
    Column("site", String(200), nullable=False, comment="the URL's host"),
    Column("url", String(2000), nullable=False),
    Column("published_at", DateTime, nullable=False, comment="UTC"),
    Column("published_zone", String(40), nullable=False,
           comment="given (the input had an offset) | the tenant zone it was read in"),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("language", String(20)),
    Column("script", String(20)),
    Column("content_hash", String(64), nullable=False,
           comment="SHA-256 of the normalised title and body"),
    Column("signature", LargeBinary, nullable=False, comment="MinHash, 128 × uint32"),
    Column("origin", String(300), nullable=False, comment="file name and line, or api"),
    Column("received_at", DateTime, nullable=False),
    comment="舆情原文：新闻与公告（来源、网址、发布时间）",
)
Index(None, risk_documents.c.tenant_id, risk_documents.c.content_hash)
Index(None, risk_documents.c.tenant_id, risk_documents.c.story_id)

risk_story_bands = Table(
    "risk_story_bands",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("bucket", String(18), primary_key=True, comment="band number + digest of its rows"),
    Column("document_id", String(40), primary_key=True),
    Column("story_id", String(40), nullable=False),
    comment="近似重复索引（MinHash LSH 分桶）",
)

risk_rejections = Table(
    "risk_rejections",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("batch_id", String(40), primary_key=True),
    Column("position", Integer, primary_key=True, comment="record number in the batch"),
    Column("origin", String(300), nullable=False, comment="file name, or api"),
    Column("location", String(40), nullable=False, comment="line 3, item 2, row 5"),
    Column("field", String(40)),
    Column("reason", String(24), nullable=False),
    Column("message", Text, nullable=False),
    Column("raw", Text, nullable=False, comment="the record as received (undecodable bytes "
                                               "as \\x escapes)"),
    Column("received_at", DateTime, nullable=False),
    comment="被拒绝的舆情文档（原样保留，附原因）",
)
Index(None, risk_rejections.c.tenant_id, risk_rejections.c.received_at)

risk_batches = Table(
    "risk_batches",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("batch_id", String(40), primary_key=True),
    Column("channel", String(8), nullable=False, comment="file | api | watch"),
    Column("origin", String(300), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("received", Integer, nullable=False),
    Column("stored", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("new_stories", Integer, nullable=False),
    Column("folded_exact", Integer, nullable=False),
    Column("folded_near", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=False),
    comment="舆情接收批次：收到 = 入库 + 重复 + 拒绝",
)

risk_alerts = Table(
    "risk_alerts",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("alert_id", String(40), primary_key=True),
    Column("story_id", String(40), nullable=False, comment="the story that raised it"),
    Column("security_code", String(6), nullable=False),
    Column("company_name", String(200), nullable=False, comment="as written in the story"),
    Column("event_type", String(40), nullable=False),
    Column("event_at", DateTime, nullable=False, comment="the story's first published (UTC)"),
    Column("customer_id", String(32), nullable=False),
    Column("advisor_id", String(32), comment="the customer's advisor when raised"),
    Column("via", String(255), nullable=False,
           comment="the routes: position, fund:<code>, joined with +"),
    Column("snapshot_date", Date, nullable=False,
           comment="the positions snapshot read (fund routes only: the day valued)"),
    Column("quantity", Numeric(20, 0), comment="the direct position's; null: funds only"),
    Column("market_value", Numeric(18, 2), comment="the direct position's; null: funds only"),
    Column("cost", Numeric(18, 2), comment="the direct position's; null: funds only"),
    Column("unrealised_pnl", Numeric(18, 2), comment="the direct position's; null: funds only"),
    Column("value_at_risk", Numeric(18, 2),
           comment="every route: position value + fund values × disclosed % of NAV"),
    Column("routes_json", Text, comment="each route: via, value at risk, value, cost, P&L; "
                                        "a fund's code, name, report date, % of NAV"),
    Column("customer_risk_level", String(4), comment="C1..C5 from the latest assessment"),
    Column("evidence_hash", String(32), nullable=False,
           comment="its evidence in risk_alert_evidence (the same for the story's holders)"),
    Column("message_hash", String(32), nullable=False,
           comment="its advisor message in risk_alert_messages (one per distinct wording)"),
    Column("repeat_story_ids_json", Text, nullable=False,
           comment="later stories about the same event: no new alert"),
    Column("created_at", DateTime, nullable=False),
    comment="舆情预警：一个事件 × 一位持仓客户",
)
Index(None, risk_alerts.c.tenant_id, risk_alerts.c.customer_id, risk_alerts.c.security_code,
      risk_alerts.c.event_type)
Index(None, risk_alerts.c.tenant_id, risk_alerts.c.story_id)

# An alert's long text, once per tenant and content (SHA-256 of it, 128 bits in hex): a story
# about a widely held stock raises 100k+ alerts that share one evidence per company and a few
# hundred wordings of the message, ≈ 2.2 kB of the ≈ 2.4 kB an alert took with them inline.
# Keyed by content, not by story: a story raised again after more copies folded into it (more
# sources) keeps its earlier alerts' evidence as it was. Never shared across tenants.
risk_alert_evidence = Table(
    "risk_alert_evidence",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("evidence_hash", String(32), primary_key=True, comment="of evidence_json"),
    Column("evidence_json", Text, nullable=False,
           comment="the linked span (name, rule, score, sentence) and the story's sources"),
    comment="舆情预警证据：同一故事同一公司的各条预警共用一份",
)

risk_alert_messages = Table(
    "risk_alert_messages",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("message_hash", String(32), primary_key=True,
           comment="of the message, message_may_send and message_notes"),
    Column("message", Text, nullable=False, comment="the factual warning an advisor may send"),
    Column("message_may_send", Boolean, nullable=False),
    Column("message_notes", Text, nullable=False),
    comment="投顾提示话术：相同措辞的预警共用一份",
)

risk_tasks = Table(
    "risk_tasks",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("task_id", String(40), primary_key=True),
    Column("alert_id", String(40), nullable=False, unique=False),
    Column("customer_id", String(32), nullable=False),
    Column("advisor_id", String(32), comment="assigned: the customer's advisor"),
    Column("status", String(12), nullable=False,
           comment="open | acknowledged | contacted | done | dismissed"),
    Column("reason", Text, comment="why dismissed"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("updated_by", String(120), nullable=False),
    comment="投顾舆情任务：每条预警一项",
)
Index(None, risk_tasks.c.tenant_id, risk_tasks.c.alert_id, unique=True)
Index(None, risk_tasks.c.tenant_id, risk_tasks.c.advisor_id, risk_tasks.c.status)
Index(None, risk_tasks.c.tenant_id, risk_tasks.c.customer_id)

risk_task_events = Table(
    "risk_task_events",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("task_id", String(40), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("from_status", String(12)),
    Column("to_status", String(12), nullable=False),
    Column("actor", String(120), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("reason", Text),
    comment="舆情任务状态变更记录（谁、何时、为何）",
)

risk_aliases = Table(
    "risk_aliases",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("name", String(100), primary_key=True, comment="the name as written in news"),
    Column("code", String(6), primary_key=True, comment="the listed company it stands for"),
    Column("kind", String(8), nullable=False, comment="former (a former name) | alias"),
    Column("valid_from", Date, comment="a former name: first day it was the name"),
    Column("valid_to", Date, comment="a former name: last day it was the name"),
    Column("note", String(200)),
    Column("loaded_at", DateTime, nullable=False),
    Column("loaded_by", String(120), nullable=False),
    comment="租户的公司别名与曾用名（舆情公司识别）",
)

risk_relations = Table(
    "risk_relations",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("party", String(200), primary_key=True,
           comment="an unlisted party: controlling shareholder, bond issuer, subsidiary"),
    Column("code", String(6), primary_key=True, comment="the listed company it is tied to"),
    Column("relation", String(40), nullable=False,
           comment="controlling_shareholder | shareholder | subsidiary | bond_issuer | …"),
    Column("note", String(200)),
    Column("loaded_at", DateTime, nullable=False),
    Column("loaded_by", String(120), nullable=False),
    comment="租户的关联方表：非上市主体 → 上市公司",
)

__all__ = ["risk_alert_evidence", "risk_alert_messages", "risk_alerts", "risk_aliases",
           "risk_batches", "risk_documents", "risk_rejections", "risk_relations",
           "risk_stories", "risk_story_bands", "risk_task_events", "risk_tasks"]

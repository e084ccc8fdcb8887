"""SoR tables of the risk news intake (issue 15, point 1): documents, the stories they fold
into, the LSH bands that find near duplicates, rejected documents and intake batches.

A story has room for what later stages add (``event_type``, ``companies_json``,
``classified_at``): the linking and classification fill them, or a table of their own keyed
by (tenant_id, story_id) — the intake never reads them.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
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

__all__ = ["risk_batches", "risk_documents", "risk_rejections",
           "risk_stories", "risk_story_bands"]

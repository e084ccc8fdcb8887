"""SoR tables of next best action (issue 16) where advisors act: the published list per
customer and the log of every recommendation shown with its outcomes.

``recommendation_lists`` is a serving table: one row per customer, replaced whole by
``caifu recommend publish``, read by primary key for the sidebar and the API.
``recommendation_log`` is append-mostly: a row per item shown (rank, score, propensity,
policy version), later stamped with what became of it — sent, opened, clicked, converted,
dismissed — so off-policy estimates (``recommend/ope``) can be computed from it. Since migration 0015 a
row also names its list and how that list explored (rate, whether it did, the pool of the
last slot), so the log knows the probability of the items it did *not* show as well.
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
    String,
    Table,
    Text,
)

from caifu.adapters.sor.metadata import metadata

recommendation_lists = Table(
    "recommendation_lists",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("as_of", Date, nullable=False, comment="the day the policy stood at"),
    Column("policy_version", String(64), nullable=False,
           comment="the tenant configuration's version / the model's digest"),
    Column("generated_at", DateTime, nullable=False, comment="UTC"),
    Column("k", Integer, nullable=False, comment="the list length published; the rest are spares"),
    Column("items_json", Text, nullable=False,
           comment="best first, k + spares: item_id, item_type, score, reason, and what "
                   "suitability judges again at read time (risk, horizon, variety, validity)"),
    comment="推荐清单：每位客户已发布的排序清单（含备选），侧边栏与接口按主键读取",
)

recommendation_log = Table(
    "recommendation_log",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("rec_id", String(32), primary_key=True, comment="one item shown once"),
    Column("customer_id", String(32), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("item_type", String(8), nullable=False, comment="content | fund | action"),
    Column("surface", String(16), nullable=False, comment="sidebar | api | campaign | group"),
    Column("rank", Integer, nullable=False, comment="1 = first shown"),
    Column("score", Float, comment="the ranker's score"),
    Column("propensity", Float, nullable=False,
           comment="the probability the serving policy shows this item (1.0: deterministic)"),
    Column("policy_version", String(64), nullable=False),
    Column("shown_at", DateTime, nullable=False, comment="UTC"),
    Column("shown_by", String(100), nullable=False, comment="who saw it: user, key or advisor"),
    Column("tracking_token", String(32),
           comment="the tracking link in the item's send text (content with a URL)"),
    Column("sent_at", DateTime, comment="the advisor sent it from the sidebar"),
    Column("opened_at", DateTime),
    Column("clicked_at", DateTime),
    Column("converted_at", DateTime, comment="uptake within the attribution window"),
    Column("dismissed_at", DateTime, comment="the advisor dismissed it"),
    Column("list_id", String(32), comment="the list it was shown in: the rows of one showing"),
    Column("explored", Boolean,
           comment="the list's last slot came from the exploration draw (recommend/explore)"),
    Column("epsilon", Float, comment="the exploration rate the list was served with"),
    Column("explore_pool", Text,
           comment="on the last slot's row: JSON item ids the last slot could have held, the "
                   "deterministic one first — with epsilon, every item's inclusion probability"),
    comment="推荐日志：每次展示的推荐（排名、得分、倾向概率、策略版本）及其结果",
)
Index(None, recommendation_log.c.tenant_id, recommendation_log.c.customer_id,
      recommendation_log.c.shown_at)
Index(None, recommendation_log.c.tenant_id, recommendation_log.c.item_id)
Index(None, recommendation_log.c.tracking_token)

RECOMMEND_TABLES = (recommendation_lists, recommendation_log)

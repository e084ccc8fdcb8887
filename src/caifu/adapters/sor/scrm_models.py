"""SoR tables of the SCRM on WeCom (issue 6): callbacks, groups, tags, identity links, chat
compliance, preference groups and campaigns. Imported by ``models`` so they share its
metadata; kept apart so neither file grows past reading size.

WeCom app credentials (``wecom_apps``) are the broker's secrets for its own WeCom corp; they
are stored as given — a private deployment should put the SoR's disk under encryption or move
them to a secret store (noted in docs/configuration.md).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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

wecom_apps = Table(
    "wecom_apps",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("corp_id", String(64), nullable=False, comment="receiveid of callbacks"),
    Column("agent_id", String(32), nullable=False),
    Column("token", String(32), nullable=False, comment="callback signature token"),
    Column("encoding_aes_key", String(43), nullable=False),
    Column("secret", String(128), nullable=False, comment="app secret for gettoken"),
    Column("api_base_url", String(200), comment="a gateway or the fake; default WeCom's"),
    Column("updated_at", DateTime, nullable=False),
    comment="企业微信应用配置（每租户）",
)

wecom_callbacks = Table(
    "wecom_callbacks",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("digest", String(64), primary_key=True,
           comment="SHA-256 of the decrypted XML: WeCom's retries collapse onto one row"),
    Column("received_at", DateTime, nullable=False),
    Column("create_time", DateTime, comment="the event's CreateTime (UTC)"),
    Column("event", String(40), nullable=False),
    Column("change_type", String(40), nullable=False),
    Column("xml", Text, nullable=False, comment="the decrypted event"),
    Column("status", String(10), nullable=False, comment="pending | applied | failed"),
    Column("error", Text, comment="why applying failed"),
    Column("applied_at", DateTime),
    comment="企业微信回调收件箱：验签解密后落库，异步处理",
)
Index(None, wecom_callbacks.c.status, wecom_callbacks.c.received_at)

wecom_rejections = Table(
    "wecom_rejections",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("last_at", DateTime, nullable=False),
    comment="被拒绝的回调计数（按租户、日期、原因）",
)

wecom_groups = Table(
    "wecom_groups",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("chat_id", String(64), primary_key=True),
    Column("name", String(200)),
    Column("owner", String(64), comment="WeCom userid of the owner"),
    Column("notice", Text),
    Column("status", String(10), nullable=False, comment="active | dismissed"),
    Column("member_version", String(64), comment="CurMemVer last applied"),
    Column("needs_resync", Boolean, nullable=False,
           comment="a version gap was seen: missed events, resync through the API"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    comment="企业微信客户群",
)

wecom_group_members = Table(
    "wecom_group_members",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("chat_id", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True, comment="userid or external_userid"),
    Column("member_type", String(10), nullable=False, comment="internal | external"),
    Column("active", Boolean, nullable=False),
    Column("joined_at", DateTime),
    Column("join_scene", Integer),
    Column("left_at", DateTime),
    Column("quit_scene", Integer),
    comment="客户群成员（含已退群）",
)
Index(None, wecom_group_members.c.tenant_id, wecom_group_members.c.member_id)

wecom_corp_tags = Table(
    "wecom_corp_tags",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("tag_id", String(64), primary_key=True),
    Column("group_id", String(64)),
    Column("group_name", String(100)),
    Column("name", String(100), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("caifu_tag_id", String(64), comment="the caifu tag this WeCom tag mirrors"),
    Column("updated_at", DateTime, nullable=False),
    comment="企业微信企业标签（含与本系统标签的映射）",
)

wecom_links = Table(
    "wecom_links",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("external_userid", String(64), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("status", String(10), nullable=False,
           comment="linked | review | rejected | unlinked"),
    Column("score", Float, nullable=False, comment="strength of the evidence, 0..1"),
    Column("evidence_json", Text, nullable=False, comment="each piece of evidence, masked"),
    Column("created_at", DateTime, nullable=False),
    Column("decided_by", String(100), comment="system or the reviewer"),
    Column("decided_at", DateTime),
    Column("note", Text),
    comment="外部联系人与客户的身份关联（证据、复核、可撤销）",
)
Index(None, wecom_links.c.tenant_id, wecom_links.c.customer_id)
Index(None, wecom_links.c.tenant_id, wecom_links.c.status)

chat_compliance_flags = Table(
    "chat_compliance_flags",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("flag_id", String(40), primary_key=True, comment="stable per message and finding"),
    Column("msg_id", String(64), nullable=False),
    Column("msg_time", DateTime, nullable=False),
    Column("advisor_id", String(32), nullable=False),
    Column("external_userid", String(64), nullable=False),
    Column("customer_id", String(32)),
    Column("sender", String(10), nullable=False, comment="advisor | customer"),
    Column("category", String(32), nullable=False),
    Column("phrase", String(64), nullable=False),
    Column("action", String(10), nullable=False, comment="review | alert"),
    Column("excerpt", Text, nullable=False, comment="context window, numbers masked"),
    Column("lexicon_version", String(32), nullable=False),
    Column("source", String(10), nullable=False, server_default="lexicon",
           comment="lexicon | model: what raised the flag"),
    Column("evidence_json", Text, comment="lexicon span and/or the model's score and top n-grams"),
    Column("model_version", String(64), comment="the chat model that judged the message"),
    Column("status", String(10), nullable=False, comment="open | confirmed | dismissed"),
    Column("reviewed_by", String(100)),
    Column("reviewed_at", DateTime),
    Column("review_note", Text),
    Column("created_at", DateTime, nullable=False),
    comment="会话合规：待复核的违规话术与敏感信息提醒",
)
Index(None, chat_compliance_flags.c.tenant_id, chat_compliance_flags.c.status,
      chat_compliance_flags.c.created_at)

preference_groups = Table(
    "preference_groups",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("group_id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("rule", Text, nullable=False, comment="tag expression choosing the members"),
    Column("level_policy", String(16), nullable=False,
           comment="lowest_member | homogeneous: how content suitability is judged"),
    Column("risk_level", String(4), comment="homogeneous groups: the one C level admitted"),
    Column("chat_id", String(64), comment="the WeCom group that carries it"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    comment="偏好客户群规划（按标签）",
)

preference_group_members = Table(
    "preference_group_members",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("group_id", String(64), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("status", String(10), nullable=False,
           comment="invite | member | left | excluded"),
    Column("reason", Text, nullable=False),
    Column("risk_level", String(4)),
    Column("updated_at", DateTime, nullable=False),
    comment="偏好客户群成员计划：邀请、在群、已退、排除",
)

campaign_runs = Table(
    "campaign_runs",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("campaign_id", String(40), primary_key=True),
    Column("segment_id", String(64), comment="the segment targeted"),
    Column("status", String(10), nullable=False,
           comment="draft | gated | sent | closed"),
    Column("scheduled_at", DateTime),
    Column("sent_at", DateTime),
    Column("attribution_days", Integer, nullable=False),
    Column("rule_version", String(32), comment="gate rules the decisions were made under"),
    Column("target_json", Text,
           comment="what was targeted: segment, customers, group or QR advisors; the cap"),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime, nullable=False),
    comment="营销活动执行（客群 × 内容 × 渠道 × 时间）",
)

campaign_decisions = Table(
    "campaign_decisions",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("campaign_id", String(40), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("outcome", String(10), nullable=False, comment="send | blocked"),
    Column("rule", String(40), nullable=False, comment="the deciding rule"),
    Column("reasons_json", Text, nullable=False),
    Column("investor_level", String(4)),
    Column("product_level", String(4)),
    Column("rule_version", String(32), nullable=False),
    Column("decided_at", DateTime, nullable=False),
    comment="发送前决策（适当性、同意、频控、合规），附规则版本",
)

campaign_contacts = Table(
    "campaign_contacts",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("campaign_id", String(40), primary_key=True),
    Column("customer_id", String(32), primary_key=True),
    Column("advisor_id", String(32)),
    Column("external_userid", String(64)),
    Column("msgid", String(64), comment="WeCom mass-send task"),
    Column("tracking_token", String(32), comment="the customer's tracking link"),
    Column("targeted_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    Column("delivered_at", DateTime),
    Column("opened_at", DateTime),
    Column("clicked_at", DateTime),
    Column("converted_at", DateTime),
    Column("conversion", String(32), comment="account_opened | funded | product_bought …"),
    comment="活动漏斗：目标→发送→送达→打开→点击→转化",
)
Index(None, campaign_contacts.c.tracking_token)
Index(None, campaign_contacts.c.tenant_id, campaign_contacts.c.customer_id)

contact_ways = Table(
    "contact_ways",
    metadata,
    Column("tenant_id", String(32), primary_key=True),
    Column("config_id", String(64), primary_key=True),
    Column("state", String(30), nullable=False, comment="comes back in add_external_contact"),
    Column("campaign_id", String(40)),
    Column("advisor_id", String(32)),
    Column("qr_code", String(500)),
    Column("created_at", DateTime, nullable=False),
    comment="渠道活码（State 归因）",
)
Index(None, contact_ways.c.tenant_id, contact_ways.c.state)

SCRM_TABLES = (wecom_apps, wecom_callbacks, wecom_rejections, wecom_groups, wecom_group_members,
               wecom_corp_tags, wecom_links, chat_compliance_flags, preference_groups,
               preference_group_members, campaign_runs, campaign_decisions, campaign_contacts,
               contact_ways)

"""The canonical broker data model, one contract per table.

Data levels follow JR/T 0158-2018 (证券期货业数据分类分级指引): 4 高, 3 较高, 2 中, 1 低.
Personal identity and financial details of a customer are level 3 and masked by default;
authentication data (passwords) is level 4 and never stored at all.

The tenant is not a column here: the system of record adds ``tenant_id`` to every table and
the lake keeps one folder per tenant, so no row exists without one.
"""

from __future__ import annotations

from decimal import Decimal

from caifu.core.suitability import VARIETIES, VARIETY_NAMES
from caifu.core.tenancy import TENANT_ID_PATTERN
from caifu.data.contracts import Column as C
from caifu.data.contracts import Table

MONEY_MAX = Decimal("9999999999999999.99")
C_LEVELS = ("C1", "C2", "C3", "C4", "C5")
R_LEVELS = ("R1", "R2", "R3", "R4", "R5")
EXCHANGES = ("SH", "SZ", "BJ")
BOARDS = ("main", "chinext", "star", "bse")
CHANNELS = ("branch", "app", "wecom", "bank", "internet", "referral", "campaign")

_customer = C("customer_id", "string", "客户号", 2, required=True, ref="customers.customer_id",
              normalise="nfkc")
_advisor = C("advisor_id", "string", "投顾编号", 2, ref="advisors.advisor_id", normalise="nfkc")
_fund_account = C("fund_account", "string", "资金账号", 3, pii=True, mask="account",
                  required=True, ref="accounts.fund_account", normalise="nfkc")


# A fund account is one customer's: a row naming both must name the account's owner.
_OWNED = (("fund_account", "customer_id", "ACCOUNT_NOT_OWNED"),)


def money(name: str, desc: str, *, required: bool = True, signed: bool = False,
          level: int = 3) -> C:
    return C(name, "decimal", desc, level, required=required,
             min=-MONEY_MAX if signed else Decimal(0), max=MONEY_MAX)


TENANTS = Table(
    "tenants", "租户（一家券商）", "sor", ("tenant_id",), ingestible=False,
    columns=(
        C("tenant_id", "string", "租户编号", 1, required=True, pattern=TENANT_ID_PATTERN),
        C("name", "string", "券商名称", 1, required=True, max_length=100),
        C("timezone", "string", "时区", 1, required=True),
        C("created_at", "timestamp", "创建时间（UTC）", 1, required=True),
    ),
    notes="Created with `caifu tenant create`; every other table belongs to one tenant.",
)

BRANCHES = Table(
    "branches", "营业部 / 分支机构", "sor", ("branch_id",),
    columns=(
        C("branch_id", "string", "营业部编号", 1, required=True, max_length=32, normalise="nfkc"),
        C("name", "string", "营业部名称", 1, required=True, max_length=100),
        C("province", "string", "省份", 1),
        C("city", "string", "城市", 1),
        C("credit_code", "string", "统一社会信用代码", 1, check="uscc", normalise="nfkc_upper"),
        C("opened_on", "date", "设立日期", 1, not_future=True),
    ),
)

ADVISORS = Table(
    "advisors", "投资顾问 / 客户经理", "sor", ("advisor_id",),
    columns=(
        C("advisor_id", "string", "投顾编号", 2, required=True, max_length=32, normalise="nfkc"),
        C("name", "string", "姓名", 2, required=True, max_length=50),
        C("branch_id", "string", "所属营业部", 1, required=True, ref="branches.branch_id",
          normalise="nfkc"),
        C("sac_number", "string", "证券业协会执业注册编号", 1, check="sac_number", normalise="nfkc_upper"),
        C("role", "string", "岗位", 1, enum=("advisor", "account_manager", "branch_manager")),
        C("mobile", "string", "工作手机", 2, check="mobile", normalise="nfkc"),
        C("wecom_userid", "string", "企业微信成员 UserID", 2, max_length=64),
        C("hired_on", "date", "入职日期", 2, not_future=True),
        C("status", "string", "状态", 1, required=True, enum=("active", "left")),
    ),
)

CUSTOMERS = Table(
    "customers", "客户", "sor", ("customer_id",),
    columns=(
        C("customer_id", "string", "客户号", 2, required=True, max_length=32, normalise="nfkc"),
        C("name", "string", "客户姓名", 3, pii=True, required=True, max_length=100, mask="name"),
        C("customer_type", "string", "客户类别", 2, required=True,
          enum=("individual", "institution")),
        C("id_type", "string", "证件类型", 3, pii=True, required=True,
          enum=("resident_id", "passport", "hk_macau_permit", "taiwan_permit", "credit_code")),
        C("id_number", "string", "证件号码", 3, pii=True, required=True, mask="resident_id",
          checks_when=(("resident_id", "id_type", "resident_id"),
                       ("uscc", "id_type", "credit_code")), normalise="nfkc_upper"),
        C("gender", "string", "性别", 3, pii=True, enum=("M", "F")),
        C("birth_date", "date", "出生日期", 3, pii=True, not_future=True),
        C("mobile", "string", "手机号", 3, pii=True, check="mobile", mask="mobile", normalise="nfkc"),
        C("branch_id", "string", "开户营业部", 2, required=True, ref="branches.branch_id",
          normalise="nfkc"),
        C("advisor_id", "string", "服务投顾", 2, ref="advisors.advisor_id", normalise="nfkc"),
        C("opened_on", "date", "开户日期", 2, required=True, not_future=True),
        C("channel", "string", "获客渠道", 2, required=True, enum=CHANNELS),
        C("status", "string", "客户状态", 2, required=True,
          enum=("normal", "dormant", "frozen", "closed")),
        C("closed_on", "date", "销户日期", 2, not_future=True),
        C("professional", "bool", "专业投资者", 2),
        C("marketing_consent", "bool", "同意营销触达", 2),
    ),
    notes="`id_number` is checked by `id_type`: GB 11643 for resident IDs, GB 32100 for credit codes.",
)

ACCOUNTS = Table(
    "accounts", "资金账户与证券账户、权限", "sor", ("fund_account",),
    columns=(
        C("fund_account", "string", "资金账号", 3, pii=True, required=True, max_length=32,
          mask="account", normalise="nfkc"),
        C("customer_id", "string", "客户号", 2, required=True, ref="customers.customer_id",
          normalise="nfkc"),
        C("sh_account", "string", "上海A股账户", 3, pii=True, check="sh_account", mask="account",
          normalise="nfkc_upper"),
        C("sz_account", "string", "深圳A股账户", 3, pii=True, check="sz_account", mask="account",
          normalise="nfkc"),
        C("opened_on", "date", "开户日期", 2, required=True, not_future=True),
        C("status", "string", "账户状态", 2, required=True,
          enum=("normal", "frozen", "closed", "transferred_out")),
        C("chinext_opened_on", "date", "创业板权限开通日", 2, not_future=True),
        C("star_opened_on", "date", "科创板权限开通日", 2, not_future=True),
        C("bse_opened_on", "date", "北交所权限开通日", 2, not_future=True),
        C("margin_opened_on", "date", "融资融券开通日", 2, not_future=True),
        C("level2_since", "date", "Level-2 行情订阅起始日", 2, not_future=True),
        C("level2_until", "date", "Level-2 行情订阅到期日", 2),
    ),
)

SECURITIES = Table(
    "securities", "证券代码表", "sor", ("security_code",),
    columns=(
        C("security_code", "string", "证券代码（6 位）", 1, required=True, pattern=r"^\d{6}$",
          normalise="nfkc"),
        C("exchange", "string", "交易所", 1, required=True, enum=EXCHANGES),
        C("short_name", "string", "证券简称", 1, required=True, max_length=50),
        C("full_name", "string", "证券全称", 1, max_length=200),
        C("security_type", "string", "证券类别", 1, required=True,
          enum=("stock", "etf", "lof", "bond", "reit")),
        C("board", "string", "板块", 1, enum=BOARDS),
        C("industry", "string", "行业", 1, max_length=50),
        C("listed_on", "date", "上市日期", 1, not_future=True),
    ),
    notes="A-share codes are unique across SH/SZ/BJ, so the 6-digit code alone is the key.",
)

FUND_PRODUCTS = Table(
    "fund_products", "基金产品（代销）", "sor", ("fund_code",),
    columns=(
        C("fund_code", "string", "基金代码", 1, required=True, pattern=r"^\d{6}$", normalise="nfkc"),
        C("name", "string", "基金名称", 1, required=True, max_length=200),
        C("fund_type", "string", "基金类型", 1, required=True,
          enum=("money", "bond", "hybrid", "equity", "index", "qdii", "fof")),
        C("risk_level", "string", "产品风险等级", 1, required=True, enum=R_LEVELS),
        C("manager_company", "string", "基金管理人", 1, required=True, max_length=100),
        C("manager_name", "string", "基金经理", 1, max_length=50),
        C("launched_on", "date", "成立日期", 1, not_future=True),
        C("mgmt_fee_rate", "decimal", "管理费率", 1, min=Decimal(0), max=Decimal("0.05"),
          precision=8, scale=6),
        C("purchase_fee_rate", "decimal", "申购费率", 1, min=Decimal(0), max=Decimal("0.05"),
          precision=8, scale=6),
        C("redeem_fee_rate", "decimal", "赎回费率", 1, min=Decimal(0), max=Decimal("0.05"),
          precision=8, scale=6),
    ),
)

SUITABILITY = Table(
    "suitability_assessments", "适当性评估（风险测评）", "sor", ("assessment_id",),
    columns=(
        C("assessment_id", "string", "测评编号", 2, required=True, max_length=40, normalise="nfkc"),
        _customer,
        C("questionnaire_version", "string", "问卷版本", 1, required=True, max_length=20),
        C("assessed_on", "date", "测评日期", 2, required=True, not_future=True),
        C("score", "int", "问卷得分", 2, required=True, min=0, max=100),
        C("risk_level", "string", "风险承受能力等级", 2, required=True, enum=C_LEVELS),
        C("no_loss_tolerance", "bool", "最低类别：不能承受任何损失", 2, required=True),
        C("no_civil_capacity", "bool", "最低类别：无完全民事行为能力", 2, required=True),
        C("objective", "string", "投资目标", 2, enum=("preserve", "income", "steady", "growth",
                                                  "aggressive")),
        C("horizon", "string", "投资期限", 2, enum=("short", "medium", "long")),
        C("valid_until", "date", "有效期至", 2, required=True),
        C("varieties", "string", "投资品种（多选）", 2, members=VARIETIES, aliases=(
            *((name, v) for v, name in VARIETY_NAMES.items()),
            ("现金管理类", "cash"), ("固定收益类", "fixed_income"), ("固收", "fixed_income"),
            ("权益类", "equity"), ("衍生品类", "derivative"), ("另类投资", "alternative"))),
    ),
    notes="`varieties` is the questionnaire's multiple choice of 投资品种 (the SAC guideline's "
          "third dimension beside level and horizon): codes or Chinese names, separated by "
          "commas, semicolons or 、; stored as codes in the order listed. Empty: not asked "
          "(older questionnaires), which restricts no variety.",
)

FUND_TOP_HOLDINGS = Table(
    "fund_top_holdings", "基金披露的重仓股（季报前十大重仓股）", "lake",
    ("fund_code", "report_date", "security_code"),
    columns=(
        C("fund_code", "string", "基金代码", 1, required=True, ref="fund_products.fund_code",
          normalise="nfkc"),
        C("report_date", "date", "报告期（截止日）", 1, required=True, not_future=True),
        C("security_code", "string", "股票代码", 1, required=True, ref="securities.security_code",
          normalise="nfkc"),
        C("rank", "int", "重仓排名", 1, min=1, max=50),
        C("nav_pct", "decimal", "占基金资产净值比例（%）", 1, required=True, min=Decimal(0),
          max=Decimal(100), precision=7, scale=4),
    ),
    notes="Public disclosures (e.g. the quarterly 前十大重仓股), as a data vendor delivers them. "
          "Exposure reads each fund's latest `report_date` on or before the day: value at "
          "risk through a fund = the customer's fund position × `nav_pct` / 100.",
)

TRADES = Table(
    "trades", "证券成交（集中交易）", "lake", ("trade_id",), agrees=_OWNED,
    columns=(
        C("trade_id", "string", "成交编号", 2, required=True, max_length=40, normalise="nfkc"),
        _customer,
        _fund_account,
        C("trade_date", "date", "成交日期", 3, required=True, not_future=True),
        C("trade_time", "timestamp", "成交时间（UTC）", 3, required=True, not_future=True),
        C("security_code", "string", "证券代码", 3, required=True, ref="securities.security_code",
          normalise="nfkc"),
        C("side", "string", "买卖方向", 3, required=True, enum=("B", "S")),
        C("quantity", "int", "成交数量", 3, required=True, min=1, max=10**12),
        C("price", "decimal", "成交价格", 3, required=True, min=Decimal(0),
          max=Decimal("99999999.999"), precision=12, scale=3),
        money("amount", "成交金额"),
        money("fee", "手续费（佣金+规费+印花税）"),
        C("channel", "string", "委托渠道", 2, enum=("app", "pc", "phone", "counter", "api")),
    ),
)

POSITIONS = Table(
    "positions", "持仓日快照", "lake", ("snapshot_date", "fund_account", "security_code"), agrees=_OWNED,
    columns=(
        C("snapshot_date", "date", "快照日期", 3, required=True, not_future=True),
        _fund_account,
        C("security_code", "string", "证券代码", 3, required=True, ref="securities.security_code",
          normalise="nfkc"),
        _customer,
        C("quantity", "int", "持仓数量", 3, required=True, min=0, max=10**12),
        money("cost", "持仓成本"),
        money("market_value", "持仓市值"),
    ),
)

CASH_FLOWS = Table(
    "cash_flows", "资金流水（入金 / 出金）", "lake", ("flow_id",), agrees=_OWNED,
    columns=(
        C("flow_id", "string", "流水号", 2, required=True, max_length=40, normalise="nfkc"),
        _customer,
        _fund_account,
        C("flow_time", "timestamp", "发生时间（UTC）", 3, required=True, not_future=True),
        C("direction", "string", "方向", 3, required=True, enum=("in", "out")),
        money("amount", "金额"),
        C("method", "string", "方式", 2, enum=("bank_transfer", "transfer_out", "dividend",
                                                "other")),
    ),
)

FUND_TRANSACTIONS = Table(
    "fund_transactions", "基金交易（认购 / 申购 / 赎回 / 分红）", "lake", ("txn_id",), agrees=_OWNED,
    columns=(
        C("txn_id", "string", "交易流水号", 2, required=True, max_length=40, normalise="nfkc"),
        _customer,
        _fund_account,
        C("fund_code", "string", "基金代码", 3, required=True, ref="fund_products.fund_code",
          normalise="nfkc"),
        C("txn_date", "date", "确认日期", 3, required=True, not_future=True),
        C("txn_type", "string", "业务类型", 3, required=True,
          enum=("subscribe", "purchase", "redeem", "dividend")),
        money("amount", "确认金额"),
        C("shares", "decimal", "确认份额", 3, required=True, min=Decimal(0), max=MONEY_MAX),
        C("nav", "decimal", "单位净值", 1, required=True, min=Decimal(0),
          max=Decimal("9999.9999"), precision=10, scale=4),
        money("fee", "手续费"),
    ),
)

APP_EVENTS = Table(
    "app_events", "APP 行为事件", "lake", ("event_id",),
    columns=(
        C("event_id", "string", "事件编号", 2, required=True, max_length=64, normalise="nfkc"),
        _customer,
        C("event_time", "timestamp", "事件时间（UTC）", 2, required=True, not_future=True),
        C("event_type", "string", "事件类型", 2, required=True,
          enum=("login", "view_quote", "view_fund", "view_content", "search", "add_watchlist",
                "view_position", "open_permission_page", "level2_page", "logout")),
        C("page", "string", "页面", 2, max_length=100),
        C("security_code", "string", "相关证券", 2, ref="securities.security_code", normalise="nfkc"),
        C("fund_code", "string", "相关基金", 2, ref="fund_products.fund_code", normalise="nfkc"),
        C("content_id", "string", "相关内容", 2, ref="content_items.content_id", normalise="nfkc"),
        C("device", "string", "设备", 2, enum=("ios", "android", "pc", "h5")),
    ),
)

WECOM_FOLLOWS = Table(
    "wecom_follows", "企业微信客户关系（投顾—客户）", "sor", ("advisor_id", "external_userid"),
    columns=(
        C("advisor_id", "string", "投顾编号", 2, required=True, ref="advisors.advisor_id",
          normalise="nfkc"),
        C("external_userid", "string", "外部联系人 ID", 3, pii=True, required=True,
          max_length=64, mask="text"),
        C("customer_id", "string", "关联客户号（已识别时）", 2, ref="customers.customer_id", normalise="nfkc"),
        C("added_at", "timestamp", "添加时间（UTC）", 2, required=True, not_future=True),
        C("state", "string", "渠道参数 State", 2, max_length=64),
        C("status", "string", "关系状态", 2, required=True,
          enum=("active", "deleted_by_customer", "deleted_by_advisor")),
        C("removed_at", "timestamp", "解除时间（UTC）", 2, not_future=True),
        C("unionid", "string", "微信 UnionID", 3, pii=True, max_length=64, mask="text"),
        C("remark_mobile", "string", "备注手机号", 3, pii=True, check="mobile", mask="mobile",
          normalise="nfkc"),
        C("archive_consent_at", "timestamp", "同意会话存档时间（UTC）", 2, not_future=True),
    ),
)

CHAT_MESSAGES = Table(
    "chat_messages", "会话存档消息", "lake", ("msg_id",),
    columns=(
        C("msg_id", "string", "消息 ID", 2, required=True, max_length=64, normalise="nfkc"),
        C("advisor_id", "string", "投顾编号", 2, required=True, ref="advisors.advisor_id",
          normalise="nfkc"),
        C("external_userid", "string", "外部联系人 ID", 3, pii=True, required=True,
          max_length=64, mask="text"),
        C("customer_id", "string", "客户号（已识别时）", 2, ref="customers.customer_id", normalise="nfkc"),
        C("msg_time", "timestamp", "发送时间（UTC）", 3, required=True, not_future=True),
        C("sender", "string", "发送方", 2, required=True, enum=("customer", "advisor")),
        C("msg_type", "string", "消息类型", 2, required=True,
          enum=("text", "image", "link", "file", "voice", "revoke")),
        C("content", "string", "消息内容", 3, pii=True, max_length=20000, mask="text"),
    ),
)

CONTENT_ITEMS = Table(
    "content_items", "内容（研报 / 投顾观点 / 事件）", "sor", ("content_id",),
    columns=(
        C("content_id", "string", "内容编号", 1, required=True, max_length=40, normalise="nfkc"),
        C("content_type", "string", "内容类型", 1, required=True,
          enum=("research_report", "advisor_view", "event", "product_intro")),
        C("title", "string", "标题", 1, required=True, max_length=200),
        C("risk_level", "string", "内容风险等级", 1, required=True, enum=R_LEVELS),
        C("author_advisor_id", "string", "作者投顾", 1, ref="advisors.advisor_id", normalise="nfkc"),
        C("published_at", "timestamp", "发布时间（UTC）", 1, required=True, not_future=True),
        C("security_code", "string", "相关证券", 1, ref="securities.security_code", normalise="nfkc"),
        C("fund_code", "string", "相关基金", 1, ref="fund_products.fund_code", normalise="nfkc"),
        C("url", "string", "链接", 1, max_length=500),
    ),
)

CAMPAIGNS = Table(
    "campaigns", "营销活动", "sor", ("campaign_id",),
    columns=(
        C("campaign_id", "string", "活动编号", 1, required=True, max_length=40, normalise="nfkc"),
        C("name", "string", "活动名称", 1, required=True, max_length=100),
        C("channel", "string", "触达渠道", 1, required=True,
          enum=("mass_send", "group", "channel_qr", "sms", "app_push")),
        C("content_id", "string", "推送内容", 1, ref="content_items.content_id", normalise="nfkc"),
        C("goal", "string", "转化目标", 1,
          enum=("account_opened", "funded", "chinext_opened", "level2", "fund_purchase",
                "reactivation")),
        C("starts_on", "date", "开始日期", 1, required=True),
        C("ends_on", "date", "结束日期", 1),
        money("spend", "活动花费", required=False, level=2),
    ),
)

CAMPAIGN_TOUCHES = Table(
    "campaign_touches", "活动触达记录", "lake", ("touch_id",),
    columns=(
        C("touch_id", "string", "触达编号", 2, required=True, max_length=64, normalise="nfkc"),
        C("campaign_id", "string", "活动编号", 2, required=True, ref="campaigns.campaign_id",
          normalise="nfkc"),
        _customer,
        C("touched_at", "timestamp", "触达时间（UTC）", 2, required=True, not_future=True),
        C("stage", "string", "漏斗阶段", 2, required=True,
          enum=("targeted", "sent", "delivered", "opened", "clicked", "converted")),
        money("cost", "触达成本", required=False, level=2),
    ),
)

TABLES = (
    TENANTS, BRANCHES, ADVISORS, CUSTOMERS, ACCOUNTS, SECURITIES, FUND_PRODUCTS, SUITABILITY,
    FUND_TOP_HOLDINGS, TRADES, POSITIONS, CASH_FLOWS, FUND_TRANSACTIONS, APP_EVENTS, WECOM_FOLLOWS, CHAT_MESSAGES,
    CONTENT_ITEMS, CAMPAIGNS, CAMPAIGN_TOUCHES,
)

"""The demo broker's export files: names, formats, Chinese headers and enum spellings.

Core-system exports (集中交易, 账户, 适当性, 基金代销) are GBK CSV with Chinese headers and
Chinese enum values, as small and mid-size brokers' systems still produce them; the marketing
and WeCom systems export UTF-8 CSV with English names; the data platform writes Parquet; chat
archive and content come as JSON Lines.
"""

from __future__ import annotations

from fnmatch import fnmatch

from caifu.core.suitability import VARIETY_NAMES
from caifu.data.demo.writers import SourceSpec

YES_NO = {"true": "是", "false": "否"}

SPECS: dict[str, SourceSpec] = {
    "branches": SourceSpec(
        "yyb*.csv", "branches", "csv", "gbk", file="yyb.csv",
        headers={"branch_id": "营业部编号", "name": "营业部名称", "province": "省份", "city": "城市",
                 "credit_code": "统一社会信用代码", "opened_on": "成立日期"}),
    "advisors": SourceSpec(
        "tgry*.csv", "advisors", "csv", "gbk", file="tgry.csv",
        headers={"advisor_id": "员工编号", "name": "姓名", "branch_id": "所属营业部",
                 "sac_number": "执业证书编号", "role": "岗位", "mobile": "工作手机",
                 "wecom_userid": "企业微信账号", "hired_on": "入职日期", "status": "在职状态"},
        values={"role": {"advisor": "投资顾问", "account_manager": "客户经理",
                         "branch_manager": "营业部负责人"},
                "status": {"active": "在职", "left": "离职"}}),
    "customers": SourceSpec(
        "khzl*.csv", "customers", "csv", "gbk", file="khzl.csv", date_format="%Y%m%d",
        headers={"customer_id": "客户号", "name": "客户姓名", "customer_type": "客户类别",
                 "id_type": "证件类型", "id_number": "证件号码", "gender": "性别",
                 "birth_date": "出生日期", "mobile": "手机号", "branch_id": "营业部",
                 "advisor_id": "投顾", "opened_on": "开户日期", "channel": "渠道", "status": "状态",
                 "closed_on": "销户日期", "professional": "专业投资者",
                 "marketing_consent": "营销同意"},
        values={"customer_type": {"individual": "个人", "institution": "机构"},
                "id_type": {"resident_id": "身份证", "passport": "护照",
                            "hk_macau_permit": "港澳居民来往内地通行证",
                            "taiwan_permit": "台湾居民来往大陆通行证",
                            "credit_code": "统一社会信用代码"},
                "gender": {"M": "男", "F": "女"},
                "channel": {"branch": "营业部现场", "app": "手机APP", "wecom": "企业微信",
                            "bank": "银行合作", "internet": "互联网引流", "referral": "客户推荐",
                            "campaign": "营销活动"},
                "status": {"normal": "正常", "dormant": "休眠", "frozen": "冻结", "closed": "销户"},
                "professional": YES_NO, "marketing_consent": YES_NO}),
    "accounts": SourceSpec(
        "zhzl*.csv", "accounts", "csv", "gbk", file="zhzl.csv", date_format="%Y%m%d",
        headers={"fund_account": "资金账号", "customer_id": "客户号", "sh_account": "沪A股东账户",
                 "sz_account": "深A股东账户", "opened_on": "开户日期", "status": "账户状态",
                 "chinext_opened_on": "创业板开通日期", "star_opened_on": "科创板开通日期",
                 "bse_opened_on": "北交所开通日期", "margin_opened_on": "融资融券开通日期",
                 "level2_since": "Level2开始日期", "level2_until": "Level2到期日期"},
        values={"status": {"normal": "正常", "frozen": "冻结", "closed": "销户",
                           "transferred_out": "转托管转出"}}),
    "suitability_assessments": SourceSpec(
        "fxcp*.csv", "suitability_assessments", "csv", "gbk", file="fxcp.csv",
        date_format="%Y%m%d",
        headers={"assessment_id": "测评编号", "customer_id": "客户号",
                 "questionnaire_version": "问卷版本", "assessed_on": "测评日期", "score": "问卷得分",
                 "risk_level": "风险承受能力", "no_loss_tolerance": "不能承受任何损失",
                 "no_civil_capacity": "无完全民事行为能力", "objective": "投资目标",
                 "horizon": "投资期限", "valid_until": "有效期至", "varieties": "投资品种"},
        values={"risk_level": {"C1": "保守型", "C2": "相对保守型", "C3": "稳健型",
                               "C4": "相对积极型", "C5": "积极型"},
                "no_loss_tolerance": YES_NO, "no_civil_capacity": YES_NO,
                "objective": {"preserve": "保值", "income": "稳定收益", "steady": "稳健增值",
                              "growth": "成长", "aggressive": "积极进取"},
                "horizon": {"short": "短期", "medium": "中期", "long": "长期"}},
        sets={"varieties": VARIETY_NAMES}),
    "fund_transactions": SourceSpec(
        "jjjy*.csv", "fund_transactions", "csv", "gbk", file="jjjy.csv",
        headers={"txn_id": "确认流水号", "customer_id": "客户号", "fund_account": "资金账号",
                 "fund_code": "基金代码", "txn_date": "确认日期", "txn_type": "业务类型",
                 "amount": "确认金额", "shares": "确认份额", "nav": "单位净值", "fee": "手续费"},
        values={"txn_type": {"subscribe": "认购", "purchase": "申购", "redeem": "赎回",
                             "dividend": "红利再投资"}}),
    "fund_products": SourceSpec("fund_products.csv", "fund_products", "csv"),
    # a data vendor's feed of funds' quarterly disclosures (前十大重仓股)
    "fund_top_holdings": SourceSpec("fund_top_holdings.csv", "fund_top_holdings", "csv"),
    "campaigns": SourceSpec("campaigns.csv", "campaigns", "csv"),
    "wecom_follows": SourceSpec("wecom_follows.csv", "wecom_follows", "csv"),
    "securities": SourceSpec("securities.parquet", "securities", "parquet"),
    "trades": SourceSpec("trades_*.parquet", "trades", "parquet", identity_columns=True),
    "positions": SourceSpec("positions.parquet", "positions", "parquet"),
    "cash_flows": SourceSpec("cash_flows.parquet", "cash_flows", "parquet"),
    "app_events": SourceSpec("app_events.parquet", "app_events", "parquet"),
    "campaign_touches": SourceSpec("campaign_touches.parquet", "campaign_touches", "parquet"),
    "chat_messages": SourceSpec("chat_messages.jsonl", "chat_messages", "jsonl"),
    "content_items": SourceSpec("content_items.jsonl", "content_items", "jsonl"),
}


def spec_of_file(file: str) -> SourceSpec:
    """The spec whose glob matches a file name (exactly one does)."""
    hits = [s for s in SPECS.values() if fnmatch(file, s.match)]
    if len(hits) != 1:
        raise KeyError(f"{file!r} matches {len(hits)} demo source globs")
    return hits[0]


def table_of_file(file: str) -> str:
    return spec_of_file(file).table

"""``caifu campaign run|send|poll|funnel|compare``: gate, send and follow WeCom campaigns."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from caifu.cli.common import TenantOpt, WorkspaceOpt, _container, app, console, operator
from caifu.cli.views import metrics_line
from caifu.core.errors import ConfigError
from caifu.core.money import pct

campaign_app = typer.Typer(no_args_is_help=True,
                           help="Campaigns: gate, send through WeCom, funnels, comparison.")
app.add_typer(campaign_app, name="campaign")

CampaignArg = Annotated[str, typer.Argument(help="Campaign id (table campaigns)")]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who runs it (audited)")]
STAGE_NAMES = {"targeted": "目标", "sent": "发送", "delivered": "送达", "opened": "打开",
               "clicked": "点击", "converted": "转化"}


def _counts(counts: dict[str, int]) -> str:
    return "、".join(f"{k} {v}" for k, v in sorted(counts.items())) or "无"


@campaign_app.command("run")
def run(campaign_id: CampaignArg, tenant: TenantOpt,
        segment: Annotated[str | None, typer.Option(help="Target a segment")] = None,
        customer: Annotated[list[str] | None, typer.Option(
            help="Target these customers (repeatable)")] = None,
        top_k: Annotated[int | None, typer.Option(
            "--top-k", help="Target the customers whose published recommendations hold the "
                            "campaign's content in their top K")] = None,
        group: Annotated[str | None, typer.Option(help="Preference group (channel group)")] = None,
        advisor: Annotated[list[str] | None, typer.Option(
            help="Advisors for the channel QR (repeatable)")] = None,
        attribution_days: Annotated[int, typer.Option(help="Attribution window, days")] = 14,
        max_sends: Annotated[int, typer.Option(help="Frequency cap: sends …")] = 2,
        cap_days: Annotated[int, typer.Option(help="… per this many days")] = 7,
        actor: ActorOpt = "cli", workspace: WorkspaceOpt = None) -> None:
    """Gate every target and store each decision; nothing is sent yet."""
    from caifu.scrm.campaigns import FrequencyCap
    from caifu.services.scrm.campaigns import Campaigns

    try:
        s = Campaigns(_container(workspace)).create_run(
            tenant, campaign_id, actor=actor, segment_id=segment, customer_ids=customer,
            group_id=group, advisor_ids=advisor, attribution_days=attribution_days,
            cap=FrequencyCap(max_sends, cap_days), recommended_k=top_k)
    except ValueError as exc:  # FrequencyCap's own check of its numbers
        raise ConfigError(str(exc)) from None
    console.print(f"活动 {s.campaign_id}（{s.channel}）：目标 {s.targeted} 人，可发送 "
                  f"{s.allowed} 人；规则版本 {s.rule_version}")
    if s.blocked:
        t = Table("拦截规则", "人数", title="拦截原因")
        for rule, n in sorted(s.blocked.items(), key=lambda x: -x[1]):
            t.add_row(rule, str(n))
        console.print(t)


@campaign_app.command("send")
def send(campaign_id: CampaignArg, tenant: TenantOpt,
         link_base: Annotated[str, typer.Option(
             help="Public base URL of this service, for tracking links")] = "http://127.0.0.1:8000",
         actor: ActorOpt = "cli", workspace: WorkspaceOpt = None) -> None:
    """Send a gated run through the tenant's WeCom app (audited)."""
    from caifu.services.scrm.campaigns import Campaigns

    s = Campaigns(_container(workspace)).send(tenant, campaign_id, actor=actor,
                                              link_base=link_base)
    extra = f"，渠道活码 {s.contact_ways} 个" if s.contact_ways else ""
    if s.logged or s.not_logged:  # a top-k run or a group post: on the recommendation log
        extra += f"，记入推荐日志 {s.logged} 人"
        if s.not_logged and s.channel == "group":
            extra += f"（该内容不在本群的内容计划中，不是推荐：{s.not_logged} 位成员未记入）"
        elif s.not_logged:
            extra += f"（{s.not_logged} 人的推荐清单已不含该内容，未记入）"
    console.print(f"活动 {s.campaign_id}：已发送 {s.sent} 人，失败 {s.failed} 人{extra}")


@campaign_app.command("poll")
def poll(campaign_id: CampaignArg, tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """Poll WeCom for delivery, then attribute conversions."""
    from caifu.services.scrm.campaigns import Campaigns
    from caifu.services.scrm.funnel import CampaignFunnel

    c = _container(workspace)
    delivered = Campaigns(c).poll(tenant, campaign_id)
    converted = CampaignFunnel(c).refresh(tenant, campaign_id)
    console.print(f"新送达 {delivered} 人，新转化 {converted} 人")


@campaign_app.command("funnel")
def funnel(campaign_id: CampaignArg, tenant: TenantOpt, workspace: WorkspaceOpt = None) -> None:
    """One campaign's funnel: targeted → sent → delivered → opened → clicked → converted."""
    from caifu.services.scrm.funnel import CampaignFunnel

    f = CampaignFunnel(_container(workspace)).funnel(operator(tenant), campaign_id)
    row = f["funnel"]
    t = Table("阶段", "人数", "环节转化率", title=f"{f['name']}（{f['campaign_id']}，{f['channel']}）")
    for stage, label in STAGE_NAMES.items():
        t.add_row(label, str(row[stage]), "" if stage == "targeted" else pct(row[f"{stage}_rate"]))
    console.print(t)
    console.print(f"整体转化率 {pct(row['conversion_rate'])}；归因窗口 {f['attribution_days']} 天；"
                  f"转化 {_counts(f['conversions'])}；拦截 {_counts(f['blocked'])}", soft_wrap=True)
    console.print(metrics_line(f["metrics"]), soft_wrap=True, style="dim")


@campaign_app.command("compare")
def compare(tenant: TenantOpt,
            limit: Annotated[int, typer.Option(help="Rows to show, newest first")] = 50,
            workspace: WorkspaceOpt = None) -> None:
    """Every campaign — live runs and lake history — with counts and rates per stage."""
    from caifu.services.scrm.funnel import CampaignFunnel

    out = CampaignFunnel(_container(workspace)).compare(operator(tenant))
    rows = out["items"]
    t = Table("活动", "名称", "渠道", "来源", *STAGE_NAMES.values(), "转化率",
              title=f"活动对比（共 {len(rows)} 个）")
    for r in rows[:limit]:
        t.add_row(r["campaign_id"], r["name"] or "", r["channel"] or "",
                  "实时" if r["source"] == "live" else "历史",
                  *(str(r[s]) for s in STAGE_NAMES), pct(r["conversion_rate"]))
    console.print(t)
    console.print(metrics_line(out["metrics"]), soft_wrap=True, style="dim")



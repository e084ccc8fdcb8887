"""Terminal views for the WeCom SCRM: what the demo's fake-WeCom run did, in tables."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from caifu.cli.views import cited, count
from caifu.core.money import pct
from caifu.services.container import Container


def scrm_with_progress(c: Container, tenant: str, as_of: date, console: Console) -> Any:
    """The fake WeCom against the demo broker: callbacks, links, chat compliance, groups, a
    campaign with its funnel (services/scrm_demo)."""
    from caifu.services.demo import scrm as scrm_demo

    t0 = time.perf_counter()
    with console.status("WeCom: callbacks, identity links, chat compliance, groups, campaign"):
        r = scrm_demo.run(c, tenant, as_of)
    console.rule(f"[bold]WeCom SCRM (fake WeCom, real callbacks and API calls; "
                 f"{time.perf_counter() - t0:.0f} s)")
    short = {"change_external_contact": "contact", "change_external_chat": "group",
             "change_external_tag": "tag"}
    failed = r.callbacks.pop("failed", 0)
    kinds = ", ".join(f"{short.get(k.split(':')[0], k.split(':')[0])} {k.split(':')[-1]} {v:,}"
                      for k, v in sorted(r.callbacks.items()))
    console.print(f"callbacks applied: {kinds}; groups resynced after a missed event: "
                  f"{r.resynced_groups}; compliant welcomes sent {r.welcomes[0]:,}"
                  + (f"; failed {failed:,} (caifu wecom status says why)" if failed else "")
                  + (f" (not sent {r.welcomes[1]:,})" if r.welcomes[1] else "")
                  + "; forged or replayed callbacks refused: "
                  + f"{sum(r.rejected.values())} ({', '.join(sorted(r.rejected))})",
                  soft_wrap=True, highlight=False)
    console.print(f"identity links: {r.links.get('linked', 0):,} linked on evidence, "
                  f"{r.links.get('review', 0):,} in the review queue; {r.links['none']:,} WeCom "
                  "contacts without evidence stay unlinked", soft_wrap=True)
    console.print(f"chat compliance over the chat history (lexicon + model): "
                  f"{r.chat_flags.get('review', 0):,} advisor flags for review, "
                  f"{r.chat_flags.get('alert', 0):,} customer alerts; the lexicon alone: "
                  f"precision {r.lexicon['precision']:.2f}, recall {r.lexicon['recall']:.2f} "
                  f"on the {r.lexicon['samples']} lines written for it (docs/wecom.md has "
                  "the figures on real text)", soft_wrap=True)
    g = Table("group", "policy", "judged at", "invite", "member", "left", "excluded",
              title="preference groups", title_justify="left",
              caption=f"customers: {cited(r.group_metrics)}", caption_justify="left")
    for row in r.groups:
        g.add_row(row["name"], row["policy"], row["lowest"] or "—",
                  *(count(row[s]) for s in ("invite", "member", "left", "excluded")))
    console.print(g)
    f = r.funnel["funnel"]
    blocked = ", ".join(f"{k} {v:,}" for k, v in sorted(r.run["blocked"].items(),
                                                        key=lambda kv: -kv[1]))
    console.print(f"campaign {r.funnel['name']} ({r.funnel['channel']}, gate "
                  f"{r.run['rule_version']}): {r.run['targeted']:,} targeted, "
                  f"{r.run['allowed']:,} passed the gate; blocked: {blocked or 'none'}",
                  soft_wrap=True, highlight=False)
    t = Table("stage", "customers", "rate from the stage before",
              title="campaign funnel (opens and clicks simulated; conversions from the data)",
              title_justify="left")
    names = {"targeted": "目标", "sent": "发送", "delivered": "送达", "opened": "打开",
             "clicked": "点击", "converted": "转化"}
    for stage, name in names.items():
        rate = f.get(f"{stage}_rate")
        t.add_row(f"{name} {stage}", f"{f[stage]:,}", "" if rate is None else f"{rate:.0%}")
    console.print(t)
    cmp = Table("campaign", "source", "channel", "targeted", "sent", "clicked", "converted",
                "conversion", title=f"campaigns compared ({len(r.compare):,}; newest 8)",
                title_justify="left")
    for row in r.compare[:8]:
        rate = row.get("conversion_rate")
        cmp.add_row(str(row.get("name") or row["campaign_id"]), str(row["source"]),
                    str(row.get("channel") or ""), f"{row['targeted']:,}", f"{row['sent']:,}",
                    f"{row['clicked']:,}", f"{row['converted']:,}",
                    pct(rate, none=""))
    console.print(cmp)
    return r

"""The demo's next-best-action step: the rankers compared on the time split (kept for the value
report's section 5) and every customer's list published for the sidebar and the API."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from caifu.core.errors import ConfigError
from caifu.services.container import Container


def recommend_with_progress(c: Container, tenant: str, console: Console, k: int = 10) -> None:
    """``caifu recommend evaluate`` then ``caifu recommend publish``, summarised. A broker too
    small to learn from (nobody took up an eligible item in a window) gets a note, not a
    failed demo: the lists are then not published and the sidebar says so."""
    from caifu.services.recommend import serving
    from caifu.services.recommend.evaluate import default_truth, evaluate, save

    with console.status("next best action: evaluating the rankers on a time split") as st:
        try:
            result = evaluate(c, tenant, k=k, truth_dir=default_truth(c),
                              progress=lambda m: st.update(f"next best action: {m}"))
        except (ValueError, ConfigError) as exc:
            console.print(f"[yellow]note:[/] next best action not evaluated: {exc}")
            return
    save(c, result)
    hidden = any(r.hidden for r in result.rankers)
    t = Table("ranker", f"NDCG@{k}", "coverage", *((f"hidden NDCG@{k}",) if hidden else ()),
              "violations", title=f"next best action — top-{k} as of {result.cutoff} vs what "
              f"{result.customers:,} customers took up in the next {result.window} days "
              f"(caifu recommend evaluate -t {tenant})", title_justify="left")
    for r in result.rankers:
        if r.name.startswith("propensity"):  # actions only: its table is in the full command
            continue
        t.add_row(r.name, f"{r.observed['ndcg']:.3f}", f"{r.observed['coverage']:.1%}",
                  *((f"{(r.hidden or {}).get('ndcg', 0):.3f}",) if hidden else ()),
                  str(r.violations))
    console.print(t)
    with console.status("next best action: ranking every customer as of the newest day") as st:
        try:
            fitted = serving.fit_newest(c, tenant,
                                        progress=lambda m: st.update(f"next best action: {m}"))
            published = serving.publish(c, fitted, k)
        except (ValueError, ConfigError) as exc:
            console.print(f"[yellow]note:[/] recommendation lists not published: {exc}")
            return
    console.print(f"recommendation lists published as of {published.as_of}: "
                  f"{published.customers:,} customers, {published.items:,} items "
                  f"({published.empty:,} with nothing eligible; {published.seconds:.0f} s) — "
                  f"the sidebar serves them (caifu recommend show -t {tenant} CUSTOMER_ID)",
                  soft_wrap=True)

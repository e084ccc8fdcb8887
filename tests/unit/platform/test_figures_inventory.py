"""Which business figures the API, the CLI and the value report show, and whether they come
from the metric layer (issue 17: "figures shown by the report, CLI and API that bypass the
metric layer — goal 0; a test lists them").

Every API operation, CLI command and console page is classified here, so a new one is a
decision someone writes down:

- ``metric``: its figures are governed metrics (``services/metrics``);
- ``records``: it shows or changes stored records (a customer, a task, a batch, a key), or a
  model's output per customer — no aggregate business figure;
- ``operations``: the service's own telemetry and job accounting, not a business KPI;
- ``bypass``: it shows aggregate business figures computed outside the metric layer. These
  are the work left; the reason says what stands in the way.

The test fails when an operation or command is not classified, or when one is classified
that no longer exists — so this list stays the true inventory.
"""

from __future__ import annotations

import typer.main
from fastapi.routing import APIRoute

from caifu.api.app import ROUTERS
from caifu.cli import app

BYPASS = {
    # API
    "api list_tags": "holder counts per tag (tag_assignments is not a metric dataset yet)",
    "api list_segments": "segment sizes (segment_sizes is written by the build)",
    "api value_rollup": "CLV/efficiency roll-ups by channel, campaign, advisor, branch, cohort: "
                        "the metric layer has clv_total etc. by channel/advisor/branch over "
                        "today's customer attributes, the roll-up uses the run's own "
                        "attribution and also cuts by campaign and cohort",
    "api redemption_answers": "the redemption study's aggregates (a model run's output)",
    "api compare_campaigns": "campaign comparison with uplift against control groups",
    "api campaign_funnel": "funnel counts of one campaign (needs filtering a query by a "
                           "dimension value)",
    "api group_content_plan": "member counts per content item of one group",
    # CLI
    "cli tags list": "as api list_tags",
    "cli segment list": "as api list_segments",
    "cli lifecycle": "customers per lifecycle stage, computed by the lifecycle analysis",
    "cli value": "CLV/efficiency totals and roll-ups of the run it makes",
    "cli redemption": "as api redemption_answers",
    "cli campaign funnel": "as api campaign_funnel",
    "cli campaign compare": "as api compare_campaigns",
    "cli groups plan": "group sizes per preference group",
    "cli groups content": "as api group_content_plan",
    "cli recommend evaluate": "ranking quality (NDCG, coverage): model evaluation, not a KPI",
    "cli recommend ope": "off-policy estimates: model evaluation, not a KPI",
    "cli report value": "sections 1–5 (customer value, lifecycle, models, redemption, "
                        "recommendations); section 0 is the metric layer",
    "cli demo": "the demo's summary (rows ingested, tags assigned) besides the report",
}

METRIC = {"api list_metrics", "api query_metric", "cli metrics list", "cli metrics show",
          "cli metrics query", "cli metrics export", "cli metrics import",
          "console console_home", "console console_metric"}

OPERATIONS = {"api healthz", "api readyz", "api metrics", "api list_jobs", "api get_job",
              "api submit_job", "api list_batches", "api list_quarantine",
              "api list_wecom_rejections", "api list_risk_rejections", "api get_data_dictionary",
              "cli ingest-log", "cli quarantine", "cli events status", "cli wecom status",
              "cli text evaluate", "cli risk evaluate", "cli risk rejections", "cli docs",
              "cli lineage export", "cli audit verify", "api quality_overview",
              "api quality_history", "cli quality status", "cli quality history",
              "cli quality check", "cli init", "cli serve",
              "cli tenant create", "cli tenant list", "cli user add", "cli key create",
              "cli key list", "cli key revoke", "cli wecom configure", "cli demo-data",
              "console console_dictionary", "console console_quality", "console console_ingest",
              "console console_login_form", "console console_login", "console console_logout",
              "console console_static"}

def api_operations() -> set[str]:
    return {f"api {r.operation_id}" for m in ROUTERS for r in m.router.routes
            if isinstance(r, APIRoute) and r.include_in_schema and r.operation_id}


def console_pages() -> set[str]:
    from caifu.web import console
    from tests.unit.console.test_console_routes import api_routes

    return {f"console {r.name}" for r in api_routes(console.router.routes)}


def cli_commands() -> set[str]:
    out: set[str] = set()

    def walk(c: object, prefix: list[str]) -> None:
        subs = getattr(c, "commands", None)
        if subs is None:
            out.add("cli " + " ".join(prefix))
            return
        for name, sub in subs.items():
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return out


def test_every_operation_and_command_is_classified() -> None:
    everything = api_operations() | cli_commands() | console_pages()
    assert len(everything) > 120
    classified = set(BYPASS) | METRIC | OPERATIONS
    records = everything - classified
    # whatever is left shows or changes records; spot-check that the split is not vacuous
    assert {"api get_customer", "api list_risk_tasks", "cli customer", "cli risk tasks"} <= \
        records
    assert classified - everything == set(), "classified but gone: drop them from the lists"


def test_the_figures_that_bypass_the_metric_layer() -> None:
    # the goal is none; this is the list the next steps work through (docs/metrics.md)
    assert len(BYPASS) == 20
    assert all(reason.strip() for reason in BYPASS.values())
    assert {"api query_metric", "cli metrics query"} <= METRIC

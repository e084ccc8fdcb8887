"""The demo job's workspace: its own folder and SQLite, never a real deployment's."""

from __future__ import annotations

import shutil
from pathlib import Path

from caifu.core.errors import WorkspaceError
from caifu.services.container import Container, default_sor_url
from caifu.services.workspace import create_tenant, init_workspace
from caifu.settings import Settings

MARKER = ".caifu-demo"
TENANT = "demo"


def prepare_workspace(root: Path, settings: Settings) -> Container:
    """A new, empty demo workspace at ``root``; only ever replaces an earlier demo workspace.

    The demo always uses its own SQLite system of record, whatever CAIFU_SOR_URL says, so it
    can never write into a real deployment's database.
    """
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise WorkspaceError(
                f"{root} exists and is not a demo workspace; the demo replaces its workspace, "
                "so give it a folder of its own (--workspace)")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("created by `caifu demo`; deleted and rebuilt by the next one\n")
    c = init_workspace(root, settings, sor_url=default_sor_url(root.resolve()))
    create_tenant(c, TENANT, "演示证券股份有限公司")
    return c


# Segments an operations analyst would start from; the build records their sizes.
DEMO_SEGMENTS = (
    ("rich_sleepers", "沉睡高净值客户", "tag:dormant and aum >= 100000"),
    ("chinext_leads", "创业板开通线索", "(tag:interest_chinext or tag:intent_open_permission) "
     "and not chinext_opened and c_level >= 'C3'"),
    ("fund_reassurance", "需安抚的基金持有人", "fund_value > 0 and (tag:intent_redeem or "
     "tag:loss_anxiety or tag:recent_loss)"),
    ("idle_depositors", "入金未交易", "tag:deposited_not_traded"),
)


def create_demo_segments(c: Container) -> None:
    from caifu.services.segments import Segments

    segments = Segments(c)
    for segment_id, name, expression in DEMO_SEGMENTS:
        segments.save(TENANT, segment_id, name, expression)


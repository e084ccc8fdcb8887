"""The service retires erased data's old lake files on its own, so the bound a regulator is
told (``retire_after`` + one hour) holds without anyone running ``caifu privacy retire``."""

from __future__ import annotations

import datetime as dt

from caifu.services.compliance import privacy
from caifu.services.container import Container
from caifu.services.platform.housekeeping import Housekeeping
from tests.integration.compliance.test_erasure_files import CID, T, _holds, _scores
from tests.integration.compliance.test_erasure_files import ws as ws  # noqa: F401 (fixture)


def test_the_hourly_tick_retires_old_files_once_they_are_due(ws: Container) -> None:  # noqa: F811
    _scores(ws)
    r = privacy.erase_customer(ws, T, CID, "comp.li", "客户要求删除")
    due = dt.datetime.fromisoformat(r.old_files_removed_by)
    root = ws.lake.path(T, "model_scores")
    hk = Housekeeping(ws)

    early = due - dt.timedelta(minutes=30)
    assert hk.tick(now=early) == {T: {"removed": 0, "waiting": 1}}
    assert _holds(root, CID)  # readers that began before the erasure may still read them
    assert hk.tick(now=due) is None  # within the hour since the last run: not yet
    done = hk.tick(now=early + hk.every)  # an hour after the first run: past due
    assert done == {T: {"removed": 1, "waiting": 0}}
    assert _holds(root, CID) == []

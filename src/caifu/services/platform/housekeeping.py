"""What the service does on its own, on a schedule: today, retiring the lake files erasures
replaced.

An erasure rewrites the lake at once but keeps the replaced files for readers that began
before it (``Lake.retire_after``, 24 h); ``privacy.retire_files`` deletes them once due. Run
from the service's minute tick, at most once per ``every`` — so a regulator can be told a
firm bound: the erased data is gone from disk within ``retire_after + every`` of the erasure
while the service runs (``caifu privacy retire`` does the same by hand or from cron).
"""

from __future__ import annotations

import datetime as dt
import logging

from caifu.services.compliance import privacy
from caifu.services.container import Container
from caifu.services.platform.workspace import list_tenants

log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self, c: Container, every: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self.c = c
        self.every = every
        self.last: dt.datetime | None = None

    def tick(self, now: dt.datetime | None = None) -> dict[str, dict[str, int]] | None:
        """Retire due files of every tenant if ``every`` has passed since the last run; what
        each tenant's retirement did, or None when it was not yet time."""
        now = now or self.c.clock.now()
        if self.last is not None and now - self.last < self.every:
            return None
        self.last = now
        done: dict[str, dict[str, int]] = {}
        for t in list_tenants(self.c):
            try:
                done[t.tenant_id] = privacy.retire_files(self.c, t.tenant_id, now=now)
            except Exception:  # one tenant's lake must not stop the others'; retried next run
                log.exception("retiring erased lake files failed", extra={"tenant": t.tenant_id})
        return done

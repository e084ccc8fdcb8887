"""Segments: named expressions over profile features and tags, evaluated as of a date.

Membership as of a date reads that date's snapshots from the lake — profile features
(``profile_features``) and the tags held (``tag_snapshots``) — so a segment's past size can
be recomputed at any time and compared with today's, whatever order dates were built in.

Each build records every segment's members on its date in the lake (``segment_members``,
one snapshot per date): the sizes the CLI and the API show are the metric ``segment_size``
over it (``services/profiles/figures.py``), so an advisor sees his customers' share.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.common.exceptions import IbisError

from caifu.adapters.csv_export import write_table
from caifu.adapters.engines.session import EngineSession
from caifu.adapters.sor.repos import profiles as repo
from caifu.core import expressions as ex
from caifu.core.errors import CaifuError, ConfigError
from caifu.pipelines.profile import FEATURE_KINDS
from caifu.pipelines.segments import segment_members
from caifu.services.container import Container
from caifu.services.profiles import tag_definitions

SEGMENT_ID = re.compile(r"^[\w.\-]{1,64}$")
FEATURE_TABLE = "profile_features"
TAG_TABLE = "tag_snapshots"
MEMBER_TABLE = "segment_members"
MEMBER_SCHEMA = pa.schema([("as_of", pa.date32()), ("segment_id", pa.string()),
                          ("customer_id", pa.string())])


@dataclass
class SizeChange:
    segment_id: str
    before: dt.date
    after: dt.date
    members_before: int
    members_after: int
    joined: int
    left: int


class Segments:
    def __init__(self, container: Container) -> None:
        self.c = container

    def known_tags(self, tenant: str) -> set[str]:
        definitions, _ = tag_definitions.load_definitions(self.c, tenant)
        return {d.id for d in definitions}

    def parse(self, tenant: str, expression: str) -> ex.Expr:
        return ex.compile_checked(expression, FEATURE_KINDS, self.known_tags(tenant))

    def save(self, tenant: str, segment_id: str, name: str, expression: str) -> None:
        if not SEGMENT_ID.match(segment_id):
            raise ConfigError(f"segment id {segment_id!r}: use 1–64 letters, digits, _ . - or "
                              "Chinese")
        self.parse(tenant, expression)
        now = self.c.clock.now()
        with self.c.engine.begin() as conn:
            repo.save_segment(conn, tenant, segment_id, name, expression, now)

    def list(self, tenant: str) -> list[dict]:
        """The definitions: id, name, expression (their sizes: ``figures.segment_sizes``)."""
        with self.c.engine.connect() as conn:
            return repo.list_segments(conn, tenant)

    def get(self, tenant: str, segment_id: str) -> dict:
        with self.c.engine.connect() as conn:
            seg = repo.get_segment(conn, tenant, segment_id)
        if seg is None:
            raise ConfigError(f"no segment {segment_id!r} in tenant {tenant!r} "
                              "(see `caifu segment list`)")
        return seg

    def dates(self, tenant: str) -> list[str]:
        return self.c.lake.snapshot_dates(tenant, FEATURE_TABLE)

    def _latest_date(self, tenant: str) -> dt.date:
        dates = self.dates(tenant)
        if not dates:
            raise ConfigError(f"tenant {tenant!r} has no profiles yet; run `caifu build -t "
                              f"{tenant}` first")
        return dt.date.fromisoformat(dates[-1])

    def members(self, tenant: str, segment_id: str, as_of: dt.date | None = None,
                engine: str = "duckdb") -> tuple[dt.date, pa.Table]:
        seg = self.get(tenant, segment_id)
        expr = self.parse(tenant, seg["expression"])
        day = as_of or self._latest_date(tenant)
        with self.c.job_session(engine, f"segment-{tenant}") as s:
            return day, self._evaluate(s, tenant, expr, day)

    def _evaluate(self, s: EngineSession, tenant: str, expr: ex.Expr, day: dt.date) -> pa.Table:
        files = self.c.lake.files(tenant, FEATURE_TABLE)
        if day.isoformat() not in self.dates(tenant):
            raise ConfigError(f"tenant {tenant!r} has no profile for {day}; run `caifu build "
                              f"-t {tenant} --as-of {day}` first")
        features = s.read_parquet(f"{tenant}_features_snap", files)
        features = features.filter(features.as_of == ibis.date(day))
        tag_files = self.c.lake.files(tenant, TAG_TABLE)
        if tag_files:
            tags = s.read_parquet(f"{tenant}_tags_snap", tag_files)
            tags = tags.filter(tags.as_of == ibis.date(day)).select("customer_id", "tag_id")
        else:
            tags = s.from_arrow(f"{tenant}_no_tags", pa.table({
                "customer_id": pa.array([], pa.string()), "tag_id": pa.array([], pa.string())}))
        out = s.to_arrow(segment_members(features, tags, expr))
        return out.sort_by("customer_id")

    def size_change(self, tenant: str, segment_id: str, before: dt.date, after: dt.date,
                    engine: str = "duckdb") -> SizeChange:
        _, a = self.members(tenant, segment_id, before, engine)
        _, b = self.members(tenant, segment_id, after, engine)
        ids_a = set(a["customer_id"].to_pylist())
        ids_b = set(b["customer_id"].to_pylist())
        return SizeChange(segment_id, before, after, len(ids_a), len(ids_b),
                          len(ids_b - ids_a), len(ids_a - ids_b))

    def record_sizes(self, s: EngineSession, tenant: str, day: dt.date
                     ) -> tuple[dict[str, int], list[str]]:
        """Recompute every segment's members on ``day``, on the caller's engine: the lake's
        ``segment_members`` snapshot of that date (what the ``segment_size`` metric counts)
        and the build's record of each size (``segment_sizes``).

        A segment that no longer evaluates (a tag removed from the definitions, say) is
        reported and skipped: it must not undo a build that is already written.
        """
        out: dict[str, int] = {}
        problems: list[str] = []
        members: dict[str, pa.Table] = {}
        now = self.c.clock.now()
        for seg in self.list(tenant):
            segment_id = seg["segment_id"]
            try:
                expr = self.parse(tenant, seg["expression"])
                ids = self._evaluate(s, tenant, expr, day)["customer_id"]
            except (CaifuError, IbisError) as exc:
                problems.append(f"segment {segment_id} not sized: {exc}")
                continue
            out[segment_id] = len(ids)
            members[segment_id] = pa.table({
                "as_of": pa.array([day] * len(ids), pa.date32()),
                "segment_id": pa.array([segment_id] * len(ids), pa.string()),
                "customer_id": ids.cast(pa.string())}, schema=MEMBER_SCHEMA)
        if members or self.c.lake.files(tenant, MEMBER_TABLE):
            data = (pa.concat_tables(members.values()) if members
                    else MEMBER_SCHEMA.empty_table())
            self.c.lake.write_snapshot(tenant, MEMBER_TABLE, data, day.isoformat(),
                                       {"caifu.as_of": day.isoformat()})
        with self.c.engine.begin() as conn:
            for segment_id, n in out.items():
                repo.record_size(conn, tenant, segment_id, day, n, now)
        return out, problems


def export(members: pa.Table, path: Path) -> Path:
    """Write members to CSV (UTF-8 with header) or Parquet, by the file's suffix."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(members, path)
    elif suffix == ".csv":  # a spreadsheet opens it: formula-like text is neutralised
        write_table(members, path)
    else:
        raise ConfigError(f"{path}: export to .csv or .parquet")
    return path

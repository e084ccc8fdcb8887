"""Mirror caifu's tags into WeCom as corp tags, so advisors see them in the client.

    caifu wecom mirror-tags -t demo [--tag dormant --tag high_net_worth]

1. Each mirrored caifu tag has a WeCom corp tag in the group 「财富标签」, created where
   missing; ``wecom_corp_tags.caifu_tag_id`` keeps the mapping.
2. Each active follow linked to a customer should carry exactly the mirrored tags the
   customer holds now. What WeCom has is read per advisor with ``batch/get_by_user`` (100
   contacts a call); only the differences are sent with ``mark_tag``. WeCom sends no
   callback for API changes, so nothing comes back to undo or double this.

WeCom allows 2,000 calls a minute per API and corp, and the client keeps under it: a first
mirror of 50,000 changed contacts takes about 25 minutes, later runs only the changes.
Tags caifu did not create (the broker's own) are never touched.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from caifu.adapters.sor.repos import profiles as profiles_repo
from caifu.adapters.sor.repos import scrm as repo
from caifu.adapters.sor.repos import wecom_groups as groups_repo
from caifu.core.errors import ConfigError
from caifu.services.container import Container
from caifu.services.scrm.wecom_app import client_for

GROUP_NAME = "财富标签"


@dataclass
class MirrorResult:
    tags: int = 0
    created: int = 0
    contacts: int = 0
    marked: int = 0  # contacts whose tags changed
    added: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


def _definitions(c: Container, tenant: str, only: list[str] | None) -> dict[str, str]:
    """caifu tag id → its display name (the newest version's)."""
    with c.engine.connect() as conn:
        versions = profiles_repo.tag_names(conn, tenant)  # oldest version first
    names: dict[str, str] = {}
    for (tag_id, _), name in versions.items():
        names[tag_id] = name
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"unknown tags: {', '.join(unknown)} (caifu tags list)")
        names = {t: names[t] for t in only}
    return names


def ensure_corp_tags(c: Container, tenant: str, client: Any, names: dict[str, str]
                     ) -> tuple[dict[str, str], int]:
    """caifu tag id → WeCom tag id for every tag in ``names``, creating what is missing."""
    with c.engine.connect() as conn:
        mapped = groups_repo.mirrored_corp_tags(conn, tenant)
    missing = [t for t in names if t not in mapped]
    if not missing:
        return {t: mapped[t] for t in names}, 0
    # WeCom tag names are unique within a group: the caifu name, and the id when names clash
    seen: dict[str, int] = defaultdict(int)
    for t in names:
        seen[names[t]] += 1
    label = {t: names[t] if seen[names[t]] == 1 else f"{names[t]}（{t}）" for t in missing}
    group = client.add_corp_tag([label[t][:30] for t in missing], group_name=GROUP_NAME)
    by_name = {tag["name"]: tag["id"] for tag in group.get("tag") or []}
    now = c.clock.now()
    with c.engine.begin() as conn:
        for t in missing:
            wid = by_name.get(label[t][:30])
            if wid is None:
                continue
            mapped[t] = wid
            groups_repo.save_corp_tag(conn, tenant, wid, group_id=group.get("group_id"),
                               group_name=GROUP_NAME, name=label[t][:100], deleted=False,
                               caifu_tag_id=t, updated_at=now)
    return {t: mapped[t] for t in names if t in mapped}, len(missing)


def mirror(c: Container, tenant: str, only: list[str] | None = None) -> MirrorResult:
    names = _definitions(c, tenant, only)
    out = MirrorResult(tags=len(names))
    with client_for(c, tenant) as client:
        to_wecom, out.created = ensure_corp_tags(c, tenant, client, names)
        ours = set(to_wecom.values())
        with c.engine.connect() as conn:
            follows = repo.mirrored_follows(conn, tenant)
            held: dict[str, set[str]] = defaultdict(set)
            for cid, tag in profiles_repo.tag_holders(conn, tenant, list(to_wecom)):
                held[cid].add(to_wecom[tag])
        customer_of = {(u, e): cid for u, e, cid in follows}
        out.contacts = len(customer_of)
        current: dict[tuple[str, str], set[str]] = {}
        for item in client.iter_batch_get_by_user(sorted({u for u, _, _ in follows})):
            info = item.get("follow_info") or {}
            key = (info.get("userid"), (item.get("external_contact") or {}).get(
                "external_userid"))
            if key in customer_of:
                current[key] = set(info.get("tag_id") or []) & ours
        for (userid, ext), cid in sorted(customer_of.items()):
            want, have = held.get(cid, set()), current.get((userid, ext), set())
            add, remove = sorted(want - have), sorted(have - want)
            if not add and not remove:
                continue
            try:
                client.mark_tag(userid, ext, add, remove)
            except Exception as e:  # one contact's refusal (e.g. deleted meanwhile) is reported
                out.errors.append(f"{ext}: {type(e).__name__}: {e}"[:300])
                continue
            out.marked += 1
            out.added += len(add)
            out.removed += len(remove)
    return out

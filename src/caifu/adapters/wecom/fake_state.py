"""The fake WeCom server's state and the ways a test or the demo sets it up: advisors,
customers and who follows whom, corp tags, group chats, codes, and mass sends that the test
drives to delivery. ``fake_routes`` answers the API from this state; ``fake`` serves it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

ERRMSG = {
    -1: "system busy", 40001: "invalid credential", 40013: "invalid corpid",
    40014: "invalid access_token", 40029: "invalid code", 40058: "invalid Request Parameter",
    40068: "invalid tagid", 40071: "UserTag Name Already Exist",
    40096: "invalid external userid", 41001: "access_token missing",
    42001: "access_token expired", 45009: "api freq out of limit",
    45033: "api concurrent out of limit", 47001: "data format error",
    60111: "userid not found", 84061: "not external contact",
}
OAUTH_CODE_LIFE = 300.0  # a sidebar OAuth code lives 5 minutes and is single-use
WELCOME_CODE_LIFE = 20.0  # send_welcome_msg must follow the add event within 20 s
MONTHLY_MASS_QUOTA = 4  # a customer receives at most 4 corp mass sends a month
_CST = 8 * 3600  # WeCom's days and months are China Standard Time


class Refusal(Exception):
    """A WeCom error answer (errcode ≠ 0) raised inside a route."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        base = ERRMSG.get(errcode, "error")
        hint = f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
        super().__init__(f"{base}{': ' + detail if detail else ''}, hint: [fake], {hint}")
        self.errcode = errcode


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"fake:{offset}".encode()).decode().rstrip("=")


def paginate(items: Sequence[Any], cursor: str | None, limit: int | None, cap: int,
             default: int) -> tuple[list[Any], str]:
    """One page and the next cursor ("" at the end), as WeCom's cursor APIs answer."""
    limit = default if limit is None else int(limit)
    if not 1 <= limit <= cap:
        raise Refusal(40058, f"limit must be 1..{cap}")
    start = 0
    if cursor:
        try:
            start = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
                        .decode().removeprefix("fake:"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise Refusal(40058, "invalid cursor") from None
    end = start + limit
    return list(items[start:end]), encode_cursor(end) if end < len(items) else ""


def cst_day(ts: float) -> int:
    """Midnight (China Standard Time) of the day holding ``ts``, as a Unix timestamp."""
    return int(ts - (ts + _CST) % 86400)


class FakeState:
    def __init__(self, corp_id: str, secret: str, agent_id: str, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.clock = clock
        self.lock = threading.RLock()
        self.members: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}  # external_userid → external_contact
        self.follows: dict[tuple[str, str], dict[str, Any]] = {}  # (userid, external_userid)
        self.tag_groups: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, Any]] = {}
        self.chats: dict[str, dict[str, Any]] = {}
        self.contact_ways: dict[str, dict[str, Any]] = {}
        self.mass_sends: dict[str, dict[str, Any]] = {}
        self.welcome_codes: dict[str, dict[str, Any]] = {}
        self.welcome_messages: list[dict[str, Any]] = []
        self.transfers: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
        self.customer_deletions: list[tuple[str, str, float]] = []  # del_follow_user: churn
        self._oauth_codes: dict[str, tuple[str, float]] = {}
        self._received: dict[tuple[str, str], int] = {}  # (target, CST month) → mass sends
        self._ids = itertools.count(1)

    def now(self) -> int:
        return int(self.clock())

    def new_id(self, prefix: str, width: int = 16) -> str:
        digest = hashlib.sha256(f"{self.corp_id}:{next(self._ids)}".encode()).hexdigest()
        return prefix + digest[:width]

    # --- lookups that answer with WeCom's errcodes ---------------------------------------

    def member(self, userid: str) -> dict[str, Any]:
        if userid not in self.members:
            raise Refusal(60111, userid)
        return self.members[userid]

    def follow(self, userid: str, external_userid: str) -> dict[str, Any]:
        if external_userid not in self.contacts:
            raise Refusal(40096)
        try:
            return self.follows[(userid, external_userid)]
        except KeyError:
            raise Refusal(84061) from None

    def tag_ref(self, ref: str) -> str:
        """A tag id from an id or a unique tag name (seeding convenience)."""
        if ref in self.tags:
            return ref
        found = [t["id"] for t in self.tags.values() if t["name"] == ref]
        if len(found) != 1:
            raise ValueError(f"no single corp tag with id or name {ref!r}")
        return str(found[0])

    # --- setting the world up -----------------------------------------------------------

    def add_member(self, userid: str, name: str | None = None, *,
                   contact_permission: bool = True) -> None:
        with self.lock:
            self.members[userid] = {"userid": userid, "name": name or userid,
                                    "contact_permission": contact_permission,
                                    "resigned": False}

    def add_contact(self, external_userid: str | None = None, name: str = "客户", *,
                    unionid: str | None = None, type: int = 1,
                    corp_name: str | None = None) -> str:
        with self.lock:
            ext = external_userid or self.new_id("wm", 30)
            contact: dict[str, Any] = {"external_userid": ext, "name": name, "type": type,
                                       "avatar": "", "gender": 0}
            if unionid:
                contact["unionid"] = unionid
            if corp_name:
                contact["corp_name"] = corp_name
            self.contacts[ext] = contact
            return ext

    def add_follow(self, userid: str, external_userid: str, *, remark: str = "",
                   description: str = "", remark_mobiles: Sequence[str] = (),
                   state: str | None = None, tags: Sequence[str] = (),
                   createtime: int | None = None, add_way: int = 1) -> None:
        with self.lock:
            self.member(userid)
            entry: dict[str, Any] = {
                "userid": userid, "remark": remark, "description": description,
                "createtime": self.now() if createtime is None else createtime,
                "tag_ids": [self.tag_ref(t) for t in tags], "remark_corp_name": "",
                "remark_mobiles": list(remark_mobiles), "oper_userid": userid,
                "add_way": add_way}
            if state:
                entry["state"] = state
            self.follows[(userid, external_userid)] = entry

    def add_tag_group(self, group_name: str, tags: Sequence[str], *,
                      group_id: str | None = None, order: int = 0) -> dict[str, str]:
        """A corp tag group; tag name → new tag id."""
        with self.lock:
            gid = group_id or self.new_id("et", 20)
            group = self.tag_groups.setdefault(gid, {
                "group_id": gid, "group_name": group_name, "create_time": self.now(),
                "order": order, "tag_ids": []})
            made = {}
            for name in tags:
                tid = self.new_id("et", 20)
                self.tags[tid] = {"id": tid, "name": name, "create_time": self.now(),
                                  "order": 0, "group_id": gid}
                group["tag_ids"].append(tid)
                made[name] = tid
            return made

    def add_group_chat(self, owner: str, members: Sequence[str], *, chat_id: str | None = None,
                       name: str = "", notice: str = "", admins: Sequence[str] = (),
                       create_time: int | None = None) -> str:
        with self.lock:
            self.member(owner)
            cid = chat_id or self.new_id("wr", 30)
            self.chats[cid] = {"chat_id": cid, "name": name, "owner": owner,
                               "create_time": self.now() if create_time is None else create_time,
                               "notice": notice, "status": 0, "member_list": [],
                               "admin_list": [{"userid": a} for a in admins], "version": 0}
            self.join_chat(cid, [owner, *[m for m in members if m != owner]], invitor=owner)
            return cid

    def join_chat(self, chat_id: str, member_ids: Sequence[str], *, join_scene: int = 1,
                  invitor: str | None = None) -> tuple[str, str]:
        """Add members; the group's member version before and after."""
        chat = self.chats[chat_id]
        before = self.member_version(chat_id)
        for m in member_ids:
            internal = m in self.members
            chat["member_list"].append({
                "userid": m, "type": 1 if internal else 2, "join_time": self.now(),
                "join_scene": join_scene, "invitor": {"userid": invitor or chat["owner"]},
                "group_nickname": "",
                "name": (self.members[m]["name"] if internal
                         else self.contacts.get(m, {}).get("name", ""))})
        chat["version"] += 1
        return before, self.member_version(chat_id)

    def leave_chat(self, chat_id: str, member_ids: Sequence[str]) -> tuple[str, str]:
        chat = self.chats[chat_id]
        before = self.member_version(chat_id)
        chat["member_list"] = [m for m in chat["member_list"] if m["userid"] not in member_ids]
        chat["version"] += 1
        return before, self.member_version(chat_id)

    def member_version(self, chat_id: str) -> str:
        chat = self.chats[chat_id]
        ids = ",".join(sorted(m["userid"] for m in chat["member_list"]))
        return hashlib.md5(f"{chat_id}:{chat['version']}:{ids}".encode()).hexdigest()

    def seed_from(self, advisors: Iterable[str | Mapping[str, Any]],
                  contacts: Iterable[Mapping[str, Any]] = (), *,
                  tag_groups: Mapping[str, Sequence[str]] | None = None,
                  chats: Iterable[Mapping[str, Any]] = ()) -> list[str]:
        """Populate from plain data; the external_userids of ``contacts`` in order.

        advisors: ``"userid"`` or ``{"userid", "name"}``; tag_groups: group name → tag names;
        contacts: ``{"external_userid"?, "name", "unionid"?, "follow": [{"userid", "remark"?,
        "remark_mobiles"?, "state"?, "tags"? (names or ids), "createtime"?}]}`` (or a single
        ``"userid"``); chats: ``{"owner", "members", "name"?, "chat_id"?}``."""
        with self.lock:
            for a in advisors:
                a = {"userid": a} if isinstance(a, str) else a
                self.add_member(a["userid"], a.get("name"))
            for group_name, names in (tag_groups or {}).items():
                self.add_tag_group(group_name, names)
            made = []
            for c in contacts:
                ext = self.add_contact(c.get("external_userid"), c.get("name", "客户"),
                                       unionid=c.get("unionid"))
                follows = c.get("follow") or ([{"userid": c["userid"]}] if "userid" in c else [])
                for f in follows:
                    self.add_follow(f["userid"], ext, remark=f.get("remark", ""),
                                    remark_mobiles=f.get("remark_mobiles", ()),
                                    state=f.get("state"), tags=f.get("tags", ()),
                                    createtime=f.get("createtime"))
                made.append(ext)
            for chat in chats:
                self.add_group_chat(chat["owner"], chat.get("members", ()),
                                    chat_id=chat.get("chat_id"), name=chat.get("name", ""))
            return made

    # --- codes and the advisor's side of things ------------------------------------------

    def issue_oauth_code(self, userid: str) -> str:
        """The code WeCom would put on the sidebar's redirect for this advisor."""
        with self.lock:
            self.member(userid)
            code = self.new_id("", 32)
            self._oauth_codes[code] = (userid, self.clock() + OAUTH_CODE_LIFE)
            return code

    def take_oauth_code(self, code: str) -> str:
        userid, expires = self._oauth_codes.pop(code, ("", 0.0))  # single-use: gone either way
        if not userid or self.clock() >= expires:
            raise Refusal(40029)
        return userid

    def issue_welcome_code(self, userid: str, external_userid: str) -> str:
        with self.lock:
            code = self.new_id("wc", 30)
            self.welcome_codes[code] = {"userid": userid, "external_userid": external_userid,
                                        "expires": self.clock() + WELCOME_CODE_LIFE,
                                        "used": False}
            return code

    def deliver(self, msgid: str, fraction: float = 1.0, seed: int = 0) -> list[str]:
        """Advisors confirm a mass send and it reaches a ``fraction`` of the still-pending
        recipients (chosen with ``seed``); the targets newly marked sent. A customer no longer
        followed fails with 2, one over the monthly quota with 3; the rest stay pending."""
        with self.lock:
            send = self.mass_sends[msgid]
            pending = sorted(k for k, r in send["recipients"].items() if r["status"] == 0)
            chosen = random.Random(seed).sample(pending, round(len(pending) * fraction))
            month = time.strftime("%Y%m", time.gmtime(self.clock() + _CST))
            delivered = []
            for userid, target in sorted(chosen):
                result = send["recipients"][(userid, target)]
                if send["chat_type"] == "single" and (userid, target) not in self.follows:
                    result["status"] = 2
                elif self._received.get((target, month), 0) >= MONTHLY_MASS_QUOTA:
                    result["status"] = 3
                else:
                    result.update(status=1, send_time=self.now())
                    self._received[(target, month)] = self._received.get((target, month), 0) + 1
                    delivered.append(target)
                send["tasks"][userid] = {"status": 2, "send_time": self.now()}
            return delivered

    def complete_transfers(self) -> int:
        """Customers waiting on a handover (24 h in WeCom) move to the takeover advisor."""
        with self.lock:
            done = 0
            for (handover, takeover, _resigned), rows in self.transfers.items():
                for row in rows:
                    if row["status"] != 2:
                        continue
                    entry = self.follows.pop((handover, row["external_userid"]), None)
                    if entry is not None:
                        self.follows[(takeover, row["external_userid"])] = {
                            **entry, "userid": takeover, "oper_userid": takeover,
                            "createtime": self.now()}
                    row.update(status=1, takeover_time=self.now())
                    done += 1
            return done

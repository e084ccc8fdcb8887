"""The fake WeCom's answers to the customer, tag, group-chat, handover and OAuth APIs, from ``FakeState``. Each route
takes the query parameters and the JSON body and returns the answer without errcode/errmsg,
or raises ``Refusal``. Changes made here produce no callback, as in WeCom."""

from __future__ import annotations

from typing import Any

from caifu.adapters.wecom.fake_state import FakeState, Refusal, cst_day, paginate

R = dict[str, Any]  # the query parameters and the JSON body, merged


class FakeRoutes(FakeState):
    ROUTES: dict[str, str] = {
        "externalcontact/get_follow_user_list": "_follow_users",
        "externalcontact/list": "_list",
        "externalcontact/get": "_get",
        "externalcontact/batch/get_by_user": "_batch_get_by_user",
        "externalcontact/remark": "_remark",
        "externalcontact/get_corp_tag_list": "_get_corp_tag_list",
        "externalcontact/add_corp_tag": "_add_corp_tag",
        "externalcontact/edit_corp_tag": "_edit_corp_tag",
        "externalcontact/del_corp_tag": "_del_corp_tag",
        "externalcontact/mark_tag": "_mark_tag",
        "externalcontact/groupchat/list": "_groupchat_list",
        "externalcontact/groupchat/get": "_groupchat_get",
        "externalcontact/groupchat/statistic": "_groupchat_statistic",
        "externalcontact/transfer_customer": "_transfer",
        "externalcontact/resigned/transfer_customer": "_transfer_resigned",
        "externalcontact/transfer_result": "_transfer_result",
        "externalcontact/resigned/transfer_result": "_transfer_result_resigned",
        "externalcontact/get_user_behavior_data": "_behavior",
        "auth/getuserinfo": "_getuserinfo",
    }

    # --- customers ---------------------------------------------------------------------

    def _follow_users(self, _r: R) -> R:
        return {"follow_user": [u for u, m in self.members.items()
                                if m["contact_permission"] and not m["resigned"]]}

    def _list(self, r: R) -> R:
        self.member(r.get("userid", ""))
        return {"external_userid": [e for (u, e) in self.follows if u == r["userid"]]}

    def _follow_user(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A follow entry as ``externalcontact/get`` shows it: tags spelled out."""
        out = {k: v for k, v in entry.items() if k != "tag_ids"}
        out["tags"] = [{"group_name": self.tag_groups[t["group_id"]]["group_name"],
                        "tag_name": t["name"], "tag_id": t["id"], "type": 1}
                       for t in (self.tags[i] for i in entry["tag_ids"] if i in self.tags)]
        return out

    def _get(self, r: R) -> R:
        ext = r.get("external_userid", "")
        if ext not in self.contacts:
            raise Refusal(40096)
        follows = [self._follow_user(f) for (_, e), f in self.follows.items() if e == ext]
        page, nxt = paginate(follows, r.get("cursor"), None, 500, 500)
        return {"external_contact": self.contacts[ext], "follow_user": page, "next_cursor": nxt}

    def _batch_get_by_user(self, r: R) -> R:
        userids = r.get("userid_list") or []
        if not 1 <= len(userids) <= 100:
            raise Refusal(40058, "userid_list must hold 1..100 userids")
        for u in userids:
            self.member(u)
        pairs = [(u, e) for u in userids for (fu, e) in self.follows if fu == u]
        page, nxt = paginate(pairs, r.get("cursor"), r.get("limit"), 100, 50)
        rows = []
        for u, e in page:
            info = {k: v for k, v in self.follows[(u, e)].items() if k != "tag_ids"}
            info["tag_id"] = list(self.follows[(u, e)]["tag_ids"])
            rows.append({"external_contact": self.contacts[e], "follow_info": info})
        return {"external_contact_list": rows, "next_cursor": nxt}

    def _remark(self, r: R) -> R:
        entry = self.follow(r.get("userid", ""), r.get("external_userid", ""))
        if len(r.get("remark_mobiles") or []) > 5:
            raise Refusal(40058, "at most 5 remark_mobiles")
        for key, field in (("remark", "remark"), ("description", "description"),
                           ("remark_company", "remark_corp_name"),
                           ("remark_mobiles", "remark_mobiles")):
            if key in r:
                entry[field] = r[key]
        return {}

    # --- corp tags ---------------------------------------------------------------------

    def _tag_group(self, gid: str, tag_ids: list[str] | None = None) -> dict[str, Any]:
        g = self.tag_groups[gid]
        ids = g["tag_ids"] if tag_ids is None else [t for t in g["tag_ids"] if t in tag_ids]
        return {"group_id": gid, "group_name": g["group_name"], "create_time": g["create_time"],
                "order": g["order"],
                "tag": [{k: self.tags[t][k] for k in ("id", "name", "create_time", "order")}
                        for t in ids]}

    def _get_corp_tag_list(self, r: R) -> R:
        if r.get("group_id"):  # WeCom ignores tag_id when group_id is given
            return {"tag_group": [self._tag_group(g) for g in r["group_id"]
                                  if g in self.tag_groups]}
        if r.get("tag_id"):
            gids = dict.fromkeys(self.tags[t]["group_id"] for t in r["tag_id"] if t in self.tags)
            return {"tag_group": [self._tag_group(g, r["tag_id"]) for g in gids]}
        return {"tag_group": [self._tag_group(g) for g in self.tag_groups]}

    def _add_corp_tag(self, r: R) -> R:
        names = [t.get("name", "") for t in r.get("tag") or []]
        if not names or not all(names):
            raise Refusal(40058, "tag names required")
        gid = r.get("group_id")
        if gid is None:
            gid = next((g for g, v in self.tag_groups.items()
                        if v["group_name"] == r.get("group_name")), None)
        elif gid not in self.tag_groups:
            raise Refusal(40068, "group_id")
        existing = {self.tags[t]["name"] for t in self.tag_groups[gid]["tag_ids"]} if gid else set()
        if existing & set(names) or len(set(names)) != len(names):
            raise Refusal(40071)
        if gid is None and not r.get("group_name"):
            raise Refusal(40058, "group_id or group_name required")
        made = self.add_tag_group(r.get("group_name", ""), names, group_id=gid,
                                  order=int(r.get("order") or 0))
        return {"tag_group": self._tag_group(self.tags[next(iter(made.values()))]["group_id"],
                                             list(made.values()))}

    def _edit_corp_tag(self, r: R) -> R:
        ident = r.get("id", "")
        target = self.tags.get(ident) or self.tag_groups.get(ident)
        if target is None:
            raise Refusal(40068)
        if r.get("name"):
            if ident in self.tags:
                siblings = self.tag_groups[target["group_id"]]["tag_ids"]
                taken = {self.tags[t]["name"] for t in siblings if t != ident}
            else:
                taken = {g["group_name"] for k, g in self.tag_groups.items() if k != ident}
            if r["name"] in taken:
                raise Refusal(40071)
            target["name" if ident in self.tags else "group_name"] = r["name"]
        if r.get("order") is not None:
            target["order"] = int(r["order"])
        return {}

    def _del_corp_tag(self, r: R) -> R:
        tag_ids, group_ids = list(r.get("tag_id") or []), list(r.get("group_id") or [])
        if not tag_ids and not group_ids:
            raise Refusal(40058, "tag_id or group_id required")
        if any(t not in self.tags for t in tag_ids) or any(
                g not in self.tag_groups for g in group_ids):
            raise Refusal(40068)
        for g in group_ids:
            tag_ids.extend(self.tag_groups[g]["tag_ids"])
        for t in set(tag_ids):
            group = self.tag_groups.get(self.tags[t]["group_id"])
            if group is not None:
                group["tag_ids"].remove(t)
                if not group["tag_ids"]:  # WeCom drops a group with its last tag
                    del self.tag_groups[self.tags[t]["group_id"]]
            del self.tags[t]
        for entry in self.follows.values():
            entry["tag_ids"] = [t for t in entry["tag_ids"] if t in self.tags]
        return {}

    def _mark_tag(self, r: R) -> R:
        entry = self.follow(r.get("userid", ""), r.get("external_userid", ""))
        add, remove = list(r.get("add_tag") or []), list(r.get("remove_tag") or [])
        if not add and not remove:
            raise Refusal(40058, "add_tag or remove_tag required")
        if any(t not in self.tags for t in add + remove):
            raise Refusal(40068)
        entry["tag_ids"] = [t for t in entry["tag_ids"] if t not in remove]
        entry["tag_ids"] += [t for t in dict.fromkeys(add) if t not in entry["tag_ids"]]
        return {}

    # --- group chats -------------------------------------------------------------------

    def _groupchat_list(self, r: R) -> R:
        owners = (r.get("owner_filter") or {}).get("userid_list")
        status = int(r.get("status_filter") or 0)
        chats = [{"chat_id": c["chat_id"], "status": c["status"]} for c in self.chats.values()
                 if (not owners or c["owner"] in owners) and (status == 0 or c["status"] == status)]
        if r.get("limit") is None:
            raise Refusal(40058, "limit required")
        page, nxt = paginate(chats, r.get("cursor"), r.get("limit"), 1000, 1000)
        return {"group_chat_list": page, "next_cursor": nxt}

    def _groupchat_get(self, r: R) -> R:
        chat = self.chats.get(r.get("chat_id", ""))
        if chat is None:
            raise Refusal(40058, "invalid chat_id")
        out = {k: v for k, v in chat.items() if k not in ("status", "version")}
        if not r.get("need_name"):
            out["member_list"] = [{k: v for k, v in m.items() if k != "name"}
                                  for m in chat["member_list"]]
        return {"group_chat": {**out, "member_version": self.member_version(chat["chat_id"])}}

    def _groupchat_statistic(self, r: R) -> R:
        begin = cst_day(int(r.get("day_begin_time") or 0))
        end = cst_day(int(r.get("day_end_time") or begin)) + 86400
        owners = (r.get("owner_filter") or {}).get("userid_list") or sorted(
            {c["owner"] for c in self.chats.values()})
        items = []
        for owner in owners:
            mine = [c for c in self.chats.values() if c["owner"] == owner]
            members = [m for c in mine for m in c["member_list"]]
            items.append({"owner": owner, "data": {
                "new_chat_cnt": sum(begin <= c["create_time"] < end for c in mine),
                "chat_total": len(mine), "chat_has_msg": 0,
                "new_member_cnt": sum(begin <= m["join_time"] < end for m in members),
                "member_total": len(members), "member_has_msg": 0, "msg_total": 0,
                "migrate_trainee_chat_cnt": 0}})
        key = {1: "new_chat_cnt", 2: "chat_total", 3: "chat_has_msg", 4: "new_member_cnt",
               5: "member_total", 6: "member_has_msg", 7: "msg_total"}.get(
                   int(r.get("order_by") or 1), "new_chat_cnt")
        items.sort(key=lambda i: i["data"][key], reverse=not r.get("order_asc"))
        offset, limit = int(r.get("offset") or 0), int(r.get("limit") or 500)
        if not 1 <= limit <= 1000:
            raise Refusal(40058, "limit must be 1..1000")
        return {"total": len(items), "next_offset": min(offset + limit, len(items)),
                "items": items[offset:offset + limit]}

    # --- statistics, handover, OAuth ------------------------------------------------------

    def _behavior(self, r: R) -> R:
        userids = list(r.get("userid") or [])
        start, end = int(r.get("start_time") or 0), int(r.get("end_time") or 0)
        if not userids or len(userids) > 100 or not 0 < end - start <= 30 * 86400:
            raise Refusal(40058, "1..100 userids and a range of at most 30 days")
        days = range(cst_day(start), cst_day(end) + 1, 86400)
        rows = []
        for day in days:
            new = sum(day <= f["createtime"] < day + 86400 for (u, _), f in self.follows.items()
                      if u in userids)
            lost = sum(day <= t < day + 86400 for u, _, t in self.customer_deletions
                       if u in userids)
            rows.append({"stat_time": day, "chat_cnt": 0, "message_cnt": 0,
                         "reply_percentage": 0.0, "avg_reply_time": 0,
                         "negative_feedback_cnt": lost, "new_apply_cnt": new,
                         "new_contact_cnt": new})
        return {"behavior_data": rows}

    def _transfer(self, r: R, resigned: bool = False) -> R:
        handover, takeover = r.get("handover_userid", ""), r.get("takeover_userid", "")
        self.member(handover)
        self.member(takeover)
        exts = list(r.get("external_userid") or [])
        if not 1 <= len(exts) <= 100:
            raise Refusal(40058, "1..100 external_userid")
        rows = self.transfers.setdefault((handover, takeover, resigned), [])
        out = []
        for ext in exts:
            ok = (handover, ext) in self.follows
            out.append({"external_userid": ext, "errcode": 0 if ok else 84061})
            if ok:
                rows.append({"external_userid": ext, "status": 2, "takeover_time": 0})
        return {"customer": out}

    def _transfer_resigned(self, r: R) -> R:
        return self._transfer(r, resigned=True)

    def _transfer_result(self, r: R, resigned: bool = False) -> R:
        rows = self.transfers.get((r.get("handover_userid", ""),
                                   r.get("takeover_userid", ""), resigned), [])
        page, nxt = paginate(rows, r.get("cursor"), None, 1000, 1000)
        return {"customer": [dict(row) for row in page], "next_cursor": nxt}

    def _transfer_result_resigned(self, r: R) -> R:
        return self._transfer_result(r, resigned=True)

    def _getuserinfo(self, r: R) -> R:
        return {"userid": self.take_oauth_code(r.get("code", ""))}

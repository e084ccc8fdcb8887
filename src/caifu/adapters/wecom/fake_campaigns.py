"""The fake WeCom's answers to the campaign APIs: channel QR codes, mass sends and their
results, welcome messages. A mass send waits for the advisor, as in WeCom: until the test
calls ``deliver`` every recipient is pending (status 0)."""

from __future__ import annotations

from typing import Any

from caifu.adapters.wecom.fake_state import FakeState, Refusal, paginate

R = dict[str, Any]  # the query parameters and the JSON body, merged


def _content(r: R) -> tuple[dict[str, str] | None, list[dict[str, Any]]]:
    """The text and attachments of a message body, checked as WeCom checks them."""
    text, attachments = r.get("text"), list(r.get("attachments") or [])
    if not (text and text.get("content")) and not attachments:
        raise Refusal(40058, "text or attachments required")
    if text and len(text.get("content", "").encode()) > 4000:
        raise Refusal(40058, "text over 4000 bytes")
    if len(attachments) > 9 or any(a.get("msgtype") not in
                                   ("image", "link", "miniprogram", "video", "file")
                                   for a in attachments):
        raise Refusal(40058, "at most 9 attachments of a known msgtype")
    return text, attachments


class CampaignRoutes(FakeState):
    ROUTES: dict[str, str] = {
        "externalcontact/add_contact_way": "_add_contact_way",
        "externalcontact/add_msg_template": "_add_msg_template",
        "externalcontact/get_groupmsg_list_v2": "_groupmsg_list",
        "externalcontact/get_groupmsg_task": "_groupmsg_task",
        "externalcontact/get_groupmsg_send_result": "_groupmsg_send_result",
        "externalcontact/send_welcome_msg": "_send_welcome_msg",
    }

    def _add_contact_way(self, r: R) -> R:
        kind, scene, users = r.get("type"), r.get("scene"), list(r.get("user") or [])
        if kind not in (1, 2) or scene not in (1, 2):
            raise Refusal(40058, "type and scene are 1 or 2")
        if kind == 1 and len(users) + len(r.get("party") or []) != 1:
            raise Refusal(40058, "a single contact way takes one user")
        if len(r.get("state") or "") > 30:
            raise Refusal(40058, "state is at most 30 characters")
        for u in users:
            self.member(u)
        config_id = self.new_id("", 32)
        qr = f"https://wework.qpic.cn/wwpic/fake/{config_id}/0"
        self.contact_ways[config_id] = {**r, "config_id": config_id, "qr_code": qr}
        return {"config_id": config_id, "qr_code": qr}

    def _add_msg_template(self, r: R) -> R:
        text, attachments = _content(r)
        chat_type, sender = r.get("chat_type") or "single", r.get("sender")
        if sender:
            self.member(sender)
        recipients: dict[tuple[str, str], dict[str, Any]] = {}
        fail: list[str] = []
        if chat_type == "single":
            for ext in r.get("external_userid") or []:
                senders = [sender] if sender else [u for (u, e) in self.follows if e == ext]
                senders = [u for u in senders if (u, ext) in self.follows]
                if not senders:
                    fail.append(ext)
                for u in senders:
                    recipients[(u, ext)] = {"status": 0}
        elif chat_type == "group":
            chat_ids = r.get("chat_id_list") or [c for c, v in self.chats.items()
                                                 if v["owner"] == sender]
            for cid in chat_ids:
                if cid in self.chats and (not sender or self.chats[cid]["owner"] == sender):
                    recipients[(self.chats[cid]["owner"], cid)] = {"status": 0}
        else:
            raise Refusal(40058, "chat_type is single or group")
        if not recipients:
            raise Refusal(40058, "no recipient can be sent to")
        msgid = self.new_id("msg", 24)
        self.mass_sends[msgid] = {
            "msgid": msgid, "creator": sender or "", "create_time": self.now(),
            "create_type": 0, "chat_type": chat_type, "text": text, "attachments": attachments,
            "recipients": recipients,
            "tasks": {u: {"status": 0} for u, _ in sorted(recipients)}}
        return {"msgid": msgid, "fail_list": fail}

    def _send(self, msgid: str) -> dict[str, Any]:
        if msgid not in self.mass_sends:
            raise Refusal(40058, "invalid msgid")
        return self.mass_sends[msgid]

    def _groupmsg_list(self, r: R) -> R:
        start, end = int(r.get("start_time") or 0), int(r.get("end_time") or 0)
        if r.get("chat_type") not in ("single", "group") or not start or end < start:
            raise Refusal(40058, "chat_type, start_time and end_time required")
        filter_type = int(r.get("filter_type", 2))
        rows = [{k: s[k] for k in ("msgid", "creator", "create_time", "create_type",
                                   "text", "attachments") if s[k] not in (None, "", [])}
                for s in self.mass_sends.values()
                if s["chat_type"] == r["chat_type"] and start <= s["create_time"] <= end
                and (not r.get("creator") or s["creator"] == r["creator"])
                and filter_type in (2, s["create_type"])]
        page, nxt = paginate(rows, r.get("cursor"), r.get("limit"), 100, 50)
        return {"group_msg_list": page, "next_cursor": nxt}

    def _groupmsg_task(self, r: R) -> R:
        tasks = self._send(r.get("msgid", ""))["tasks"]
        rows = [{"userid": u, **t} for u, t in tasks.items()]
        page, nxt = paginate(rows, r.get("cursor"), r.get("limit"), 1000, 500)
        return {"task_list": page, "next_cursor": nxt}

    def _groupmsg_send_result(self, r: R) -> R:
        send = self._send(r.get("msgid", ""))
        key = "external_userid" if send["chat_type"] == "single" else "chat_id"
        rows = [{key: target, "userid": u, **result}
                for (u, target), result in sorted(send["recipients"].items())
                if u == r.get("userid")]
        page, nxt = paginate(rows, r.get("cursor"), r.get("limit"), 1000, 500)
        return {"send_list": page, "next_cursor": nxt}

    def _send_welcome_msg(self, r: R) -> R:
        code = self.welcome_codes.get(r.get("welcome_code", ""))
        text, attachments = _content(r)
        if code is None or code["used"] or self.clock() >= code["expires"]:
            raise Refusal(40058, "invalid welcome_code: unknown, used or older than 20 s")
        code["used"] = True
        self.welcome_messages.append({"userid": code["userid"],
                                      "external_userid": code["external_userid"],
                                      "text": text, "attachments": attachments})
        return {}

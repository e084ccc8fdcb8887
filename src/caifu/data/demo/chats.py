"""WeCom: advisor-customer relationships and archived chat messages.

About a third of customers follow an advisor on WeCom (most of those acquired through a
WeCom channel QR code, whose ``state`` says which one); some followers are prospects not yet
matched to a customer. What a customer asks depends on his traits — ChiNext-interested
customers ask how to open ChiNext, fund holders with redemption propensity about redeeming,
leavers about transferring out, risk-takers about adding — but the words are not ours: each
text message is a line of the labelled corpus's train split chosen by its labels
(``caifu.data.demo.chat_lines``), sometimes two lines with the same labels joined. Advisors
answer with the corpus's advisor lines (about 3 % of them labelled violations), or share a
content item as a link. The corpus labels of every message (and the scenario that chose it) go
to ``_ground_truth/chat_labels.parquet``. The one message not from the corpus is a customer
pasting his own resident ID number (no words: the alert path needs a valid number).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from caifu.data.demo.activity import _ids
from caifu.data.demo.chat_lines import FAMILIES, Line, join, pools
from caifu.data.demo.people import NO_DAY, Population
from caifu.data.demo.world import World, day_number, local_micros, to_date
from caifu.data.demo.writers import timestamps

_ID_CHARS = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                          dtype=np.uint8)
FOLLOW_STATUS = np.array(["active", "deleted_by_customer", "deleted_by_advisor"])
INTENTS = ("open_chinext", "chinext_question", "open_permission", "level2", "redeem", "add",
           "reduce", "transfer_out", "open_account", "fee", "complaint", "loss_anxiety", "relief",
           "market", "chatter", "sensitive_id")
VIOLATION_SHARE, CONTENT_SHARE = 0.03, 0.14  # of advisor replies; the rest are plain replies
JOIN_SHARE = 0.12  # messages made of two lines with the same labels
MSG_TYPES = np.array(["text", "image", "link", "file", "voice", "revoke"])


def _random_ids(rng: np.random.Generator, prefix: str, n: int, length: int) -> np.ndarray:
    body = _ID_CHARS[rng.integers(0, len(_ID_CHARS), (n, length))]
    return np.char.add(prefix, body.view(f"S{length}").ravel().astype(str))


def _season(d: int) -> str:
    day = to_date(d)
    return f"{day.year}{('winter', 'spring', 'spring', 'summer', 'autumn', 'autumn')[day.month // 2 % 6]}"


def make_follows(world: World, pop: Population, rng: np.random.Generator) -> tuple[pa.Table, dict]:
    n = pop.n
    end_d = day_number(world.end)
    wecom = pop.channel == 2
    p = np.clip(0.14 + 0.65 * wecom + 0.08 * (pop.advisor >= 0) + 0.04 * pop.app_eng, 0, 0.95)
    cust = np.flatnonzero(rng.random(n) < p)
    m = len(cust)
    n_pro = int(round(m * 0.12))  # prospects: followers not (yet) matched to a customer
    adv = pop.advisor[cust].copy()
    by_branch = [np.flatnonzero(world.advisor_branch == b) for b in range(len(world.branch_weight))]
    for i in np.flatnonzero(adv < 0):
        pool = by_branch[pop.branch[cust[i]]]
        adv[i] = pool[rng.integers(0, len(pool))]
    adv = np.r_[adv, rng.integers(0, len(world.advisor_ids), n_pro)]
    lo = np.maximum(pop.opened[cust], day_number(date(2019, 6, 1)))
    added = np.where(wecom[cust], pop.opened[cust] - rng.integers(0, 10, m),
                     lo + np.floor(rng.random(m) * (end_d - lo + 1)).astype(np.int64))
    added = np.r_[np.minimum(added, end_d), rng.integers(int(world.days[0]), end_d + 1, n_pro)]
    k = m + n_pro
    added_t = local_micros(added, rng.integers(9 * 3600, 22 * 3600, k))
    status = rng.choice(3, k, p=[0.88, 0.09, 0.03])
    leaver = np.r_[pop.churn_kind[cust] == 2, np.zeros(n_pro, bool)]
    status[leaver & (rng.random(k) < 0.7)] = 1
    closed = np.r_[pop.closed_day[cust], np.full(n_pro, NO_DAY)]
    rm_lo = np.where(leaver, np.minimum(closed, end_d), added)
    removed = rm_lo + np.floor(rng.random(k) * (end_d - rm_lo + 1)).astype(np.int64)
    removed_t = np.maximum(local_micros(removed, rng.integers(9 * 3600, 22 * 3600, k)),
                           added_t + 3600 * 10**6)
    end_t = local_micros(np.array([end_d + 1]), np.array([0]))[0] - 10**6
    removed_t = np.minimum(removed_t, end_t)
    gone = status > 0
    state = np.full(k, None, dtype=object)
    qr = np.r_[wecom[cust], rng.random(n_pro) < 0.6]
    for i in np.flatnonzero(qr):
        state[i] = f"ch_qr_{_season(added[i])}"
    other = ~qr & (rng.random(k) < 0.45)
    branch_ids = np.asarray(world.branches["branch_id"].to_pylist())
    for i in np.flatnonzero(other):
        state[i] = ("app_banner" if i % 3 == 0 else
                    f"branch_poster_{branch_ids[world.advisor_branch[adv[i]]]}")
    ext = _random_ids(rng, "wm", k, 30)
    union = _random_ids(rng, "o6_bm", k, 23)
    has_union = rng.random(k) < 0.6
    mob = np.r_[pop.mobile[cust], np.full(n_pro, "")]
    remark = (rng.random(k) < 0.4) & (mob != "")
    customer_id = np.r_[pop.customer_id[cust], np.full(n_pro, "")]
    table = pa.table({
        "advisor_id": world.advisor_ids[adv], "external_userid": ext,
        "customer_id": pa.array(customer_id, mask=customer_id == ""),
        "added_at": timestamps(added_t), "state": pa.array(state, pa.string()),
        "status": FOLLOW_STATUS[status],
        "removed_at": pa.array(np.where(gone, removed_t, 0), mask=~gone).cast(pa.timestamp("us")),
        "unionid": pa.array(union, mask=~has_union),
        "remark_mobile": pa.array(mob, mask=~remark),
    })
    info = {"cust": np.r_[cust, np.full(n_pro, -1)], "adv": adv, "ext": ext, "added_t": added_t,
            "until_t": np.where(gone, removed_t, end_t)}
    return table, info


def make_chats(world: World, pop: Population, follows: dict, fund_of: np.ndarray,
               rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    cust, adv, ext = follows["cust"], follows["adv"], follows["ext"]
    k = len(cust)
    known = cust >= 0
    c = np.maximum(cust, 0)
    eng = np.where(known, pop.app_eng[c], 1.0)
    pairs = rng.poisson(1.6 + 1.2 * np.minimum(eng, 3))
    conv = np.repeat(np.arange(k), pairs)
    # the archive covers the window only, however old the relationship
    since = np.maximum(follows["added_t"][conv], int(world.days[0]) * 86400 * 10**6)
    conv, since = conv[since < follows["until_t"][conv]], since[since < follows["until_t"][conv]]
    span = follows["until_t"][conv] - since
    t_ask = since + (rng.random(len(conv)) * span * 0.98).astype(np.int64)
    t_ask -= t_ask % 10**6
    # customer intents from traits
    cc, kn = c[conv], known[conv]
    w = np.zeros((len(conv), len(INTENTS)))
    col = {name: i for i, name in enumerate(INTENTS)}
    chinext_open = pop.chinext_day[cc] < NO_DAY
    closed = kn & ~chinext_open
    w[:, col["open_chinext"]] = np.where(closed, 2.9 * pop.chinext_i[cc] ** 1.5, 0.05)
    w[:, col["chinext_question"]] = np.where(closed & (pop.chinext_i[cc] < 0.2), 0.4, 0.05)
    w[:, col["open_permission"]] = np.where(kn, 0.3 * pop.risk[cc], 0.05)
    w[:, col["level2"]] = np.where(kn, 2.0 * pop.level2_i[cc] ** 1.5, 0.05)
    w[:, col["redeem"]] = np.where(kn & (fund_of[cc] >= 0), 2.0 * pop.redeem_p[cc], 0)
    w[:, col["add"]] = np.where(kn, 0.8 * pop.risk[cc], 0.1)
    w[:, col["reduce"]] = np.where(kn & (pop.activity[cc] > 0), 0.3, 0.02)
    w[:, col["transfer_out"]] = np.where(kn & (pop.churn_kind[cc] == 2), 1.0, 0.02)
    w[:, col["open_account"]] = np.where(kn, 0.02, 2.5)
    w[:, col["fee"]] = 0.35
    w[:, col["complaint"]] = np.where(kn, 0.15 + 0.4 * pop.risk[cc] * (pop.activity[cc] > 0), 0.02)
    w[:, col["loss_anxiety"]] = np.where(kn, 0.1 + 0.3 * pop.risk[cc], 0.02)
    w[:, col["relief"]] = np.where(kn, 0.2, 0.02)
    w[:, col["market"]] = 1.0
    w[:, col["chatter"]] = 0.5
    w[:, col["sensitive_id"]] = np.where(kn, 0.004, 0)
    cw = np.cumsum(w, axis=1)
    intent = (rng.random(len(conv))[:, None] * cw[:, -1:] > cw).sum(axis=1)
    reply = rng.random(len(conv)) < 0.85
    t_reply = t_ask + rng.integers(30, 5400, len(conv)) * 10**6
    t_reply = np.minimum(t_reply, follows["until_t"][conv])

    texts: list[str] = []
    drawn: list[tuple[Line, ...]] = []
    shared: dict[int, int] = {}  # message -> the content item its link card carries
    published = world.contents["published_at"].cast(pa.int64()).to_numpy()  # ascending
    labels, senders, times, convs = [], [], [], []
    r = rng.random((len(conv), 8))
    lines = pools()

    def draw(pool: tuple[Line, ...], u: float, u_join: float, u_mate: float) -> None:
        first = pool[int(u * len(pool))]
        text, used = join(first, pool, u_mate) if u_join < JOIN_SHARE else (first.text, (first,))
        texts.append(text)
        drawn.append(used)

    for i in range(len(conv)):
        ci = cc[i]
        name = INTENTS[intent[i]]
        if name == "sensitive_id":  # the customer pastes his own ID number: an alert
            texts.append(str(pop.id_number[ci]))
            drawn.append(())
        else:
            draw(lines[name], r[i, 6], r[i, 0], r[i, 1])
        labels.append(name)
        senders.append(0)
        times.append(t_ask[i])
        convs.append(conv[i])
        if reply[i]:
            u = r[i, 7]
            if VIOLATION_SHARE <= u < VIOLATION_SHARE + CONTENT_SHARE:
                # an item already published when he replies (the first one at the very start)
                item = int(r[i, 5] * max(int(np.searchsorted(published, t_reply[i])), 1))
                shared[len(texts)] = item
                texts.append(world.content_titles[item])  # shared as a link card (below), not said
                drawn.append(())
                labels.append("advisor_content")
            else:
                key = "violation" if u < VIOLATION_SHARE else "reply"
                draw(lines[f"advisor_{key}"], r[i, 2], r[i, 3], r[i, 4])
                labels.append(f"advisor_{key}")
            senders.append(1)
            times.append(t_reply[i])
            convs.append(conv[i])
    m = len(texts)
    sender = np.array(senders, dtype=np.int64)
    conv_m = np.array(convs, dtype=np.int64)
    t = np.array(times, dtype=np.int64)
    mtype = np.where(sender == 0, rng.choice(6, m, p=[0.88, 0.05, 0.01, 0.01, 0.04, 0.01]),
                     rng.choice(6, m, p=[0.9, 0.04, 0.0, 0.03, 0.03, 0.0]))
    is_content = np.array([lb == "advisor_content" for lb in labels], dtype=bool)
    rng.random(m)  # drawn as before, so the streams of the tables generated after stay put
    mtype[is_content] = 2  # a content item is shared as a link card
    content = np.array(texts, dtype=object)
    content[np.isin(mtype, (1, 4, 5))] = None
    for i in np.flatnonzero(mtype == 3):
        content[i] = ("2026年投资策略.pdf", "基金定投计划表.xlsx", "风险揭示书.pdf")[i % 3]
    for i in np.flatnonzero((mtype == 2) & (sender == 0)):
        content[i] = "https://mp.weixin.qq.com/s/" + "demo" + str(i % 997)
    for i in np.flatnonzero((mtype == 2) & (sender == 1)):
        content[i] = f"{texts[i]} https://wealth.example.com/content/{world.content_ids[shared[i]]}"
    o = np.lexsort((sender, t))
    msg_ids = _ids("M", pop.chunk, m)
    cust_c = cust[conv_m[o]]
    table = pa.table({
        "msg_id": msg_ids, "advisor_id": world.advisor_ids[adv[conv_m[o]]],
        "external_userid": ext[conv_m[o]],
        "customer_id": pa.array(pop.customer_id[np.maximum(cust_c, 0)], mask=cust_c < 0),
        "msg_time": timestamps(t[o]), "sender": np.array(["customer", "advisor"])[sender[o]],
        "msg_type": MSG_TYPES[mtype[o]], "content": pa.array(list(content[o]), pa.string()),
    })
    return table, _truth(msg_ids, [labels[j] for j in o], [drawn[j] for j in o])


def _truth(msg_ids: np.ndarray, labels: list[str], drawn: list[tuple[Line, ...]]) -> pa.Table:
    """Ground truth per message: the scenario, the corpus lines used and their labels (the
    union when two lines were joined — they carry the same labels)."""
    strings = pa.list_(pa.string())
    return pa.table({
        "msg_id": msg_ids, "label": pa.array(labels, pa.string()),
        "corpus_ids": pa.array([[x.id for x in used] for used in drawn], strings),
        "traditional": pa.array([bool(used) and all(x.traditional for x in used)
                                 for used in drawn], pa.bool_()),
        **{fam: pa.array([sorted({v for x in used for v in x.labels[fam]}) for used in drawn],
                         strings) for fam in FAMILIES},
    })

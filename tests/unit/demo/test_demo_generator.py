"""The demo broker: deterministic, well-formed, and bad exactly where it says it is.

``_Checker`` re-reads every file through ``sources.yaml`` and applies the table contracts
(required, types and scale, enums, ranges, validators, not-future, references, duplicate
keys) independently of the generator, so "injected_errors.json matches the files" is a
recount, not a restatement.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatch
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from caifu.core.ids import VALIDATORS, validate_resident_id
from caifu.data.contracts import Column, registry
from caifu.data.demo import generate
from caifu.text.corpus import load_corpus
from caifu.text.taxonomy import default_taxonomy

CUSTOMERS = 400
TODAY = date.today()
BOOL_TEXT = {"true", "false", "1", "0", "y", "n", "是", "否"}
REF_KINDS = {"securities": "unknown_security", "customers": "unknown_customer"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_a")
    generate(out, customers=CUSTOMERS, seed=11)
    return out


def _data_files(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_file() and p.name != "sources.yaml")


def _read(path: Path, entry: dict) -> list[dict]:
    if path.suffix == ".csv":
        text = path.read_bytes().decode(entry.get("encoding", "utf-8"))
        rows = [{k: (v if v != "" else None) for k, v in r.items()}
                for r in csv.DictReader(io.StringIO(text))]
    elif path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    columns = entry.get("columns")
    values = entry.get("values", {})
    out = []
    for r in rows:
        row = {columns[k] if columns else k: v for k, v in r.items()}
        for col, mapping in values.items():
            if row.get(col) in mapping:
                row[col] = mapping[row[col]]
        out.append(row)
    return out


def _parse(col: Column, v: object) -> object:
    """The typed value, or raise ValueError naming the failed rule."""
    if col.kind == "date":
        if isinstance(v, date):
            return v
        s = str(v)
        try:
            return datetime.strptime(s, "%Y%m%d" if len(s) == 8 else "%Y-%m-%d").date()
        except ValueError:
            raise ValueError("invalid_date") from None
    if col.kind == "timestamp":
        return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    if col.kind == "int":
        return int(v)
    if col.kind == "decimal":
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            raise ValueError("decimal") from None
        if -d.as_tuple().exponent > col.scale:
            raise ValueError("price_scale")
        return d
    if col.kind == "bool":
        if isinstance(v, bool) or str(v).lower() in BOOL_TEXT:
            return v
        raise ValueError("bool")
    return str(v)


class _Checker:
    """Applies contracts to files and returns {(file, kind, key)} of rejected rows."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.entries = yaml.safe_load((out / "sources.yaml").read_text("utf-8"))["sources"]
        self.reg = registry()
        self.keys: dict[str, set] = {}

    def _reason(self, table, row: dict) -> str | None:
        for col in table.columns:
            v = row.get(col.name)
            if v is None or v == "":
                if col.required:
                    return "missing_required"
                continue
            try:
                v = _parse(col, v)
            except ValueError as err:
                return str(err)
            if col.enum and v not in col.enum:
                return "unknown_enum"
            if col.min is not None and v < col.min:
                return "negative_amount"
            if col.max is not None and v > col.max:
                return "too_large"
            if col.max_length and len(v) > col.max_length:
                return "too_long"
            if col.not_future and (v.date() if isinstance(v, datetime) else v) > TODAY:
                return "future_date"
            if col.check and VALIDATORS[col.check](v):
                return {"mobile": "bad_mobile"}.get(col.check, col.check)
            for name, other, value in col.checks_when:
                if row.get(other) == value and VALIDATORS[name](v):
                    return {"ID_CHECKSUM": "id_checksum"}.get(VALIDATORS[name](v), name)
            if col.ref:
                ref_table, _, _ = col.ref.partition(".")
                if v not in self.keys[ref_table]:
                    return REF_KINDS.get(ref_table, f"unknown_ref_{ref_table}")
        return None

    def run(self) -> set[tuple[str, str, str]]:
        rejected = set()
        files = _data_files(self.out)
        for table in self.reg:
            entries = [e for e in self.entries if e["table"] == table.name]
            keys: set = set()
            for entry in entries:
                for path in (p for p in files if fnmatch(p.name, entry["match"])):
                    for row in _read(path, entry):
                        key = tuple(str(row.get(k)) for k in table.key)
                        reason = self._reason(table, row)
                        if reason is None and key in keys:
                            reason = "overlap_duplicate"
                        if reason is None:
                            keys.add(key)
                        else:
                            rejected.add((path.name, reason, key[0]))
            self.keys[table.name] = {k[0] for k in keys} if len(table.key) == 1 else set()
        return rejected


def test_injected_errors_are_exactly_the_rows_contracts_reject(demo: Path) -> None:
    truth = json.loads((demo / "_ground_truth" / "injected_errors.json").read_text("utf-8"))
    expected = {(r["file"], r["kind"], next(iter(r["key"].values()))) for r in truth["rows"]}
    found = _Checker(demo).run()
    assert found == expected
    kinds = Counter(k for _, k, _ in found)
    assert {"id_checksum", "invalid_date", "bad_mobile", "unknown_enum", "missing_required",
            "negative_amount", "future_date", "unknown_security", "unknown_customer",
            "price_scale", "overlap_duplicate"} <= set(kinds)
    recount: dict[str, Counter] = {}
    for file, kind, _ in found - {r for r in found if r[1] == "overlap_duplicate"}:
        recount.setdefault(file, Counter())[kind] += 1
    assert {f: dict(c) for f, c in recount.items()} == truth["files"]
    dupes = Counter(f for f, k, _ in found if k == "overlap_duplicate")
    assert dict(dupes) == truth["overlap_duplicates"]


def test_same_seed_same_bytes_other_seed_differs(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, customers=CUSTOMERS, seed=11)
    other = tmp_path / "other"
    generate(other, customers=CUSTOMERS, seed=12)
    names = [p.name for p in _data_files(demo)]
    assert names == [p.name for p in _data_files(again)]
    for name in [*names, "sources.yaml"]:
        assert (demo / name).read_bytes() == (again / name).read_bytes(), name
    for name in ("injected_errors.json", "latent_traits.parquet", "chat_labels.parquet",
                 "preference_vectors.parquet", "item_topics.parquet"):
        gt = Path("_ground_truth") / name
        assert (demo / gt).read_bytes() == (again / gt).read_bytes(), name
    assert (demo / "khzl.csv").read_bytes() != (other / "khzl.csv").read_bytes()
    assert (demo / "trades_2026.parquet").read_bytes() != (other / "trades_2026.parquet").read_bytes()
    prefs = Path("_ground_truth") / "preference_vectors.parquet"
    assert (demo / prefs).read_bytes() != (other / prefs).read_bytes()


def test_resident_ids_validate_except_injected(demo: Path) -> None:
    truth = json.loads((demo / "_ground_truth" / "injected_errors.json").read_text("utf-8"))
    bad = {r["key"]["customer_id"] for r in truth["rows"] if r["kind"] == "id_checksum"}
    rows = list(csv.DictReader(io.StringIO((demo / "khzl.csv").read_bytes().decode("gbk"))))
    ids = {r["客户号"]: r["证件号码"] for r in rows if r["证件类型"] == "身份证"}
    assert len(ids) > CUSTOMERS * 0.9
    invalid = {cid for cid, number in ids.items() if validate_resident_id(number) is not None}
    assert invalid == bad and len(bad) >= 1


def test_gbk_files_are_gbk_not_utf8(demo: Path) -> None:
    entries = yaml.safe_load((demo / "sources.yaml").read_text("utf-8"))["sources"]
    gbk = [e["match"] for e in entries if e.get("encoding") == "gbk"]
    assert {"khzl*.csv", "zhzl*.csv", "fxcp*.csv", "jjjy*.csv", "yyb*.csv", "tgry*.csv"} <= set(gbk)
    for path in _data_files(demo):
        if any(fnmatch(path.name, g) for g in gbk):
            data = path.read_bytes()
            assert "客户号" in data.decode("gbk") or "营业部" in data.decode("gbk")
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")


def test_sources_yaml_covers_every_file_and_not_ground_truth(demo: Path) -> None:
    text = (demo / "sources.yaml").read_text("utf-8")
    entries = yaml.safe_load(text)["sources"]
    assert "_ground_truth" not in text.split("\n", 2)[-1]
    tables = {t.name for t in registry()}
    for entry in entries:
        assert entry["table"] in tables
        assert set(entry) <= {"match", "table", "encoding", "columns", "values", "utc_offset_hours"}
    for path in _data_files(demo):
        hits = [e for e in entries if fnmatch(path.name, e["match"])]
        assert len(hits) == 1, path.name
    for entry in entries:
        assert any(fnmatch(p.name, entry["match"]) for p in _data_files(demo)), entry["match"]
    # every source column is mapped: CSV headers are exactly the mapping's keys
    for entry in entries:
        if "columns" in entry and entry["match"].endswith(".csv"):
            path = next(p for p in _data_files(demo) if fnmatch(p.name, entry["match"]))
            header = path.read_bytes().decode(entry["encoding"]).split("\n", 1)[0].split(",")
            assert header == list(entry["columns"])


def test_latent_traits_one_row_per_customer(demo: Path) -> None:
    traits = pq.read_table(demo / "_ground_truth" / "latent_traits.parquet")
    assert traits.num_rows == CUSTOMERS
    assert len(set(traits["customer_id"].to_pylist())) == CUSTOMERS
    kinds = Counter(traits["churn_kind"].to_pylist())
    assert kinds["none"] > 0 and kinds["dormant"] + kinds["transfer_out"] > 0
    churned = [d for d, k in zip(traits["churn_date"].to_pylist(),
                                 traits["churn_kind"].to_pylist(), strict=True) if k != "none"]
    assert all(d is not None for d in churned)


def test_volumes_scale_with_customers(demo: Path, tmp_path: Path) -> None:
    small = generate(tmp_path / "small", customers=CUSTOMERS // 4, seed=11)
    big = json.loads((demo / "_ground_truth" / "injected_errors.json").read_text("utf-8"))
    assert big["customers"] == CUSTOMERS
    rows = dict.fromkeys(("trades", "app_events", "chat_messages", "fund_transactions"), 0)
    for path in _data_files(demo):
        for t in rows:
            if path.name.startswith(t) and path.suffix == ".parquet":
                rows[t] += pq.read_metadata(path).num_rows
    assert rows["trades"] / CUSTOMERS > 10 and rows["app_events"] / CUSTOMERS > 15
    ratio = rows["trades"] / small.rows_per_table["trades"]
    assert 2.5 < ratio < 6
    ratio = rows["app_events"] / small.rows_per_table["app_events"]
    assert 2.5 < ratio < 6
    assert small.rows_per_table["securities"] > 5000  # the world does not shrink
    assert small.clean_rows_per_table["trades"] < small.rows_per_table["trades"]


def test_chunked_generation_stays_clean_and_unique(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import caifu.data.demo.generator as generator

    monkeypatch.setattr(generator, "CHUNK", 120)
    out = tmp_path / "chunked"
    summary = generate(out, customers=300, seed=5)  # chunks of 120, 120 and 60 customers
    truth = json.loads((out / "_ground_truth" / "injected_errors.json").read_text("utf-8"))
    expected = {(r["file"], r["kind"], next(iter(r["key"].values()))) for r in truth["rows"]}
    assert _Checker(out).run() == expected
    rows = list(csv.DictReader(io.StringIO((out / "khzl.csv").read_bytes().decode("gbk"))))
    ids = [r["证件号码"] for r in rows]
    assert len(ids) == len(set(ids))
    assert summary.rows_per_table["customers"] == 300 + sum(
        truth["files"]["khzl.csv"].values())
    traits = pq.read_table(out / "_ground_truth" / "latent_traits.parquet")
    assert traits.num_rows == 300


def test_chats_are_train_lines_of_the_corpus_with_their_labels(demo: Path) -> None:
    """Every text message is a verbatim train-split line of the labelled corpus, or two with
    the same labels joined; its ground truth is the corpus's labels (issue 14, point 5)."""
    corpus = {i.id: i for i in load_corpus(None, default_taxonomy()).items}
    truth = {r["msg_id"]: r for r in
             pq.read_table(demo / "_ground_truth" / "chat_labels.parquet").to_pylist()}
    messages = [json.loads(x) for x in (demo / "chat_messages.jsonl").read_text("utf-8")
                .splitlines()]
    assert set(truth) == {m["msg_id"] for m in messages}
    seen: Counter[str] = Counter()
    for m in messages:
        gt = truth[m["msg_id"]]
        used = [corpus[i] for i in gt["corpus_ids"]]
        assert all(i.split == "train" and i.side == m["sender"] for i in used), m
        for fam in ("interests", "intents", "emotions", "violations"):
            assert gt[fam] == sorted({v for i in used for v in i.labels[fam]}), (m, fam)
        if len(used) == 2:
            assert used[0].labels == used[1].labels
            seen["joined"] += 1
        if m["msg_type"] != "text":
            continue
        if used:
            first, *rest = (i.text for i in used)
            assert m["content"].startswith(first)
            assert m["content"].removeprefix(first).lstrip("，") == "".join(rest)
            seen[gt["label"]] += 1
            seen["traditional"] += gt["traditional"]
        else:  # the one message not from the corpus: a customer's own ID number
            assert gt["label"] == "sensitive_id" and validate_resident_id(m["content"]) is None
    assert seen["joined"] and seen["traditional"] and seen["advisor_violation"]
    assert seen["advisor_reply"] > seen["advisor_violation"]
    # links carry the content item the advisor shared; no text message is a content title
    assert all(m["msg_type"] == "link" for m in messages
               if truth[m["msg_id"]]["label"] == "advisor_content")


def test_chat_scenarios_follow_the_customers_traits(demo: Path) -> None:
    """Who asks what still depends on who he is: leavers ask about transferring out,
    customers who already opened ChiNext do not ask how to open it.

    Leavers are ~3 % of 400 customers and write a few dozen messages, so the transfer-out
    question is compared per message: chats.py weighs it 1.0 for a leaver against 0.02 for
    anyone else (50×); seeds 11–13 give 16–54×, and 5× is asserted."""
    traits = {r["customer_id"]: r for r in
              pq.read_table(demo / "_ground_truth" / "latent_traits.parquet").to_pylist()}
    truth = {r["msg_id"]: r["label"] for r in
             pq.read_table(demo / "_ground_truth" / "chat_labels.parquet").to_pylist()}
    asked: dict[str, Counter[str]] = {}
    for line in (demo / "chat_messages.jsonl").read_text("utf-8").splitlines():
        m = json.loads(line)
        if m["sender"] == "customer" and m["customer_id"]:
            kind = traits[m["customer_id"]]["churn_kind"]
            asked.setdefault(truth[m["msg_id"]], Counter())[kind] += 1
    written = Counter[str]()
    for by_kind in asked.values():
        written.update(by_kind)
    leavers = asked["transfer_out"]["transfer_out"] / written["transfer_out"]
    others = (sum(asked["transfer_out"].values()) - asked["transfer_out"]["transfer_out"]) / (
        written.total() - written["transfer_out"])
    assert leavers > 5 * others
    assert sum(asked["redeem"].values()) and sum(asked["open_chinext"].values())

"""Small, valid reference data and helpers to write source files in tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from caifu.core.ids import make_uscc, resident_id_for
from caifu.services.container import Container

BRANCHES = "branch_id,name,province,city,credit_code\n" + "\n".join([
    f"B01,北京金融街营业部,北京,北京,{make_uscc('9', '1', '110102', '10001001')}",
    f"B02,上海陆家嘴营业部,上海,上海,{make_uscc('9', '1', '310115', '10001002')}",
]) + "\n"

ADVISORS = (
    "advisor_id,name,branch_id,sac_number,role,mobile,status\n"
    "A01,王晓明,B01,S0010120080012,advisor,13800138000,active\n"
    "A02,李娜,B02,S0010120090034,advisor,13900139000,active\n"
)


def customer_row(i: int, **override: str) -> str:
    row = {
        "customer_id": f"C{i:05d}",
        "name": ["张伟", "王芳", "李娜", "欧阳娜娜", "刘洋"][i % 5],
        "customer_type": "individual",
        "id_type": "resident_id",
        "id_number": resident_id_for("110105", dt.date(1980, 1, 1) + dt.timedelta(days=i), i % 1000),
        "gender": "M",
        "birth_date": (dt.date(1980, 1, 1) + dt.timedelta(days=i)).isoformat(),
        "mobile": f"138{i:08d}",
        "branch_id": "B01" if i % 2 else "B02",
        "advisor_id": "A01",
        "opened_on": "2020-03-01",
        "channel": "app",
        "status": "normal",
    }
    row.update(override)
    return ",".join(row.values())


CUSTOMER_HEADER = ("customer_id,name,customer_type,id_type,id_number,gender,birth_date,mobile,"
                   "branch_id,advisor_id,opened_on,channel,status")


def customers_csv(n: int, extra_rows: list[str] | None = None) -> str:
    rows = [customer_row(i) for i in range(1, n + 1)] + (extra_rows or [])
    return CUSTOMER_HEADER + "\n" + "\n".join(rows) + "\n"


SECURITIES = (
    "security_code,exchange,short_name,security_type,board\n"
    "600000,SH,浦发银行,stock,main\n300750,SZ,宁德时代,stock,chinext\n"
    "510050,SH,上证50ETF,etf,main\n"
)


def accounts_csv(n: int) -> str:
    rows = [f"F{i:05d},C{i:05d},A{i:09d},{i:010d},2020-03-01,normal" for i in range(1, n + 1)]
    return "fund_account,customer_id,sh_account,sz_account,opened_on,status\n" + "\n".join(rows) + "\n"


TRADE_HEADER = ("trade_id,customer_id,fund_account,trade_date,trade_time,security_code,side,"
                "quantity,price,amount,fee")


def trade_row(i: int, **override: str) -> str:
    c = (i % 5) + 1
    row = {
        "trade_id": f"T{i:07d}", "customer_id": f"C{c:05d}", "fund_account": f"F{c:05d}",
        "trade_date": "2025-03-03", "trade_time": "2025-03-03 02:15:00",
        "security_code": ["600000", "300750", "510050"][i % 3], "side": "B" if i % 2 else "S",
        "quantity": "100", "price": "10.500", "amount": "1050.00", "fee": "5.00",
    }
    row.update(override)
    return ",".join(row.values())


def trades_csv(ids: range, extra_rows: list[str] | None = None) -> str:
    return TRADE_HEADER + "\n" + "\n".join([trade_row(i) for i in ids] + (extra_rows or [])) + "\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def seed_reference(folder: Path, customers: int = 5) -> list[Path]:
    """Branches, advisors, customers, accounts and securities that facts can refer to."""
    return [
        write(folder / "branches.csv", BRANCHES),
        write(folder / "advisors.csv", ADVISORS),
        write(folder / "customers.csv", customers_csv(customers)),
        write(folder / "accounts.csv", accounts_csv(customers)),
        write(folder / "securities.csv", SECURITIES),
    ]


def reference_workspace(root: Path) -> Container:
    """A SQLite workspace under ``root`` with tenant ``acme`` and its reference data (branches,
    advisors, five customers with accounts) ingested clean — what the ingest probes and fuzz
    tests build their files against."""
    from caifu.services.ingest.load import Ingest
    from caifu.services.platform.workspace import create_tenant, init_workspace
    from caifu.settings import Settings

    c = init_workspace(root / "ws", Settings(duckdb_memory_limit="1GB", duckdb_threads=2))
    create_tenant(c, "acme", "甲乙证券")
    for r in Ingest(c).ingest("acme", seed_reference(root / "ref")):
        assert r.quarantined == 0, r.reasons
    return c

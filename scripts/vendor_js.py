"""Vendor the console's two JavaScript libraries from the npm registry: Apache ECharts and htmx.

Nothing is fetched at run time (no CDN): the minified builds are committed under
``src/caifu/web/static/vendor/`` with their licence files and served by the console's static
route. Taken from each package (``npm pack <name>@<version>``, read as a tarball):

- ``echarts``: ``dist/echarts.min.js`` (the full build: line, bar, sankey, graph …),
  ``LICENSE`` and ``NOTICE`` (Apache-2.0 asks for both), ``licenses/LICENSE-d3`` (d3 code the
  LICENSE names as a subcomponent);
- ``htmx.org``: ``dist/htmx.min.js`` and ``LICENSE`` (0BSD).

Run from the repository root: ``python scripts/vendor_js.py``. It needs npm and the registry;
re-running it gives identical files. Versions, licences and checksums: ``docs/third-party.md``.
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "caifu" / "web" / "static" / "vendor"
# htmx: the 2.x line (npm's "latest" is 4.x, a rewrite with another API)
PACKAGES = {
    ("echarts", "6.1.0"): {"dist/echarts.min.js": "echarts.min.js",
                           "LICENSE": "LICENSE.echarts", "NOTICE": "NOTICE.echarts",
                           "licenses/LICENSE-d3": "LICENSE-d3.echarts"},
    ("htmx.org", "2.0.11"): {"dist/htmx.min.js": "htmx.min.js", "LICENSE": "LICENSE.htmx"},
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for (name, version), members in PACKAGES.items():
            done = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=tmp,
                                  check=True, capture_output=True, text=True)
            tgz = Path(tmp) / done.stdout.strip().splitlines()[-1]
            print(f"{name}@{version}: {tgz.name} sha256 {sha256(tgz.read_bytes())}")
            with tarfile.open(tgz) as tar:
                for member, target in members.items():
                    f = tar.extractfile(f"package/{member}")
                    assert f is not None, member
                    data = f.read()
                    (OUT / target).write_bytes(data)
                    print(f"  {member} -> {target} ({len(data):,} bytes, sha256 {sha256(data)})")


if __name__ == "__main__":
    main()

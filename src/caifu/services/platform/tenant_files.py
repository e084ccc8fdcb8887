"""Per-tenant YAML configuration in the workspace, with a packaged default.

``TenantFile("tags")`` is ``<workspace>/tags/<tenant>.yaml`` when the tenant has one, else
``caifu/data/tags/default.yaml``; the same for ``value`` and ``lifecycle``. Parsing the
document into its model is the caller's; this module only finds, reads and copies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from caifu.core.errors import ConfigError
from caifu.services.container import Container


def load_yaml(text: str, source: str) -> Any:
    """The YAML document, or a ConfigError naming ``source``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


@dataclass(frozen=True)
class TenantFile:
    kind: str  # the folder in the workspace and under caifu/data

    def default_text(self) -> str:
        return (resources.files("caifu.data") / self.kind / "default.yaml").read_text(
            encoding="utf-8")

    def path(self, c: Container, tenant: str) -> Path:
        return c.root / self.kind / f"{tenant}.yaml"

    def read(self, c: Container, tenant: str) -> tuple[str, str]:
        """``(text, source)``: the tenant's file, or the packaged default."""
        path = self.path(c, tenant)
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
        return self.default_text(), f"caifu/data/{self.kind}/default.yaml (packaged default)"

    def init(self, c: Container, tenant: str, force: bool = False) -> Path:
        """Copy the default into the workspace for the tenant to edit."""
        path = self.path(c, tenant)
        if path.exists() and not force:
            raise ConfigError(f"{path} exists; edit it, or pass --force to overwrite it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.default_text(), encoding="utf-8")
        return path
